"""`adabert-cnn`: the backbone of `--algo adabert`: the searchable CNN supernet on the teacher's tokenizer and
its projected embeddings; from an artifact's config, the derived CNN the search chose."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.interfaces import Backbone


class AdaBertCnn(Backbone):
    """The supernet (`model.max_cells` cells of `model.nodes` nodes, width `model.hidden_size`) with the
    teacher's (`model.teacher`) tokenizer; its word, position and token-type embeddings start from the
    teacher's, projected onto their top `hidden_size` principal directions."""

    name = "adabert-cnn"
    description = "AdaBERT's searchable CNN student (--algo adabert): teacher's embeddings projected to 128"
    options: ClassVar[dict[str, Option]] = {
        "teacher": Option((str, type(None)), None, "the teacher: a run folder or model artifact (its tokenizer "
                          "and embeddings start the student; --algo adabert distils it)", path="folder"),
        "hidden_size": Option(int, 128, "width of the embeddings and of every cell", min=1),
        "max_cells": Option(int, 8, "K_max, the deepest architecture the search considers", min=1),
        "nodes": Option(int, 3, "intermediate nodes of a cell", min=1),
    }

    def load(self) -> tuple[Any, Any]:
        from etk_distill.adabert.encoder import AdaBertConfig, SearchEncoder
        from etk_distill.internals import encoder_of
        from etk_distill.teacher import backbone_teacher

        teacher = backbone_teacher(self.options.get("teacher"), self.name)
        teacher_encoder = encoder_of(teacher.model)
        tokenizer = teacher.app.tokenizer
        teacher_config = teacher_encoder.config
        words = teacher_encoder.get_input_embeddings().weight
        config = AdaBertConfig(
            vocab_size=words.shape[0], hidden_size=int(self.options["hidden_size"]),
            max_position_embeddings=int(teacher_config.max_position_embeddings),
            type_vocab_size=int(getattr(teacher_config, "type_vocab_size", 1) or 1),
            max_cells=int(self.options["max_cells"]), nodes=int(self.options["nodes"]), genotype=None,
            hidden_dropout_prob=float(getattr(teacher_config, "hidden_dropout_prob", 0.1)),
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            teacher_hidden_size=int(words.shape[1]))
        encoder = SearchEncoder(config)
        encoder.init_from_teacher(teacher_encoder)
        return encoder, tokenizer

    @classmethod
    def load_tokenizer(cls, folder: Any) -> Any:
        from transformers import AutoTokenizer

        from etk_distill.adabert.config import register_config

        register_config()  # AutoTokenizer reads config.json's model_type
        return AutoTokenizer.from_pretrained(folder)

    @classmethod
    def load_config(cls, folder: Any) -> Any:
        from etk_distill.adabert.config import AdaBertConfig

        return AdaBertConfig.from_pretrained(folder)

    @classmethod
    def encoder_from_config(cls, config: Any) -> Any:
        from etk_distill.adabert.encoder import build_encoder

        return build_encoder(config)
