"""The transformers config of AdaBERT's CNN (model_type `etk-adabert`) and its AutoConfig registration."""

from __future__ import annotations

from typing import Any

from transformers.configuration_utils import PreTrainedConfig

MODEL_TYPE = "etk-adabert"


class AdaBertConfig(PreTrainedConfig):
    """The CNN student's shape: embeddings of `hidden_size` (128) over the teacher's vocabulary and positions,
    `max_cells` (K_max) cells of `nodes` intermediate nodes, and the derived `genotype` ({"depth": K, "ops":
    [one operation per edge]}; null: the supernet)."""

    model_type = MODEL_TYPE

    vocab_size: int = 30522
    hidden_size: int = 128
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    max_cells: int = 8
    nodes: int = 3
    genotype: dict | None = None
    hidden_dropout_prob: float | int = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    teacher_hidden_size: int | None = None


def register_config(auto_config_module: Any = None) -> None:
    """Make `etk-adabert` known to transformers' AutoConfig (idempotent); `auto_config_module`: transformers'
    configuration_auto module where it is being imported (see `etk_distill.adabert`)."""
    if auto_config_module is None:
        import importlib

        auto_config_module = importlib.import_module("transformers.models.auto.configuration_auto")
    if MODEL_TYPE not in auto_config_module.CONFIG_MAPPING:
        auto_config_module.AutoConfig.register(MODEL_TYPE, AdaBertConfig)
