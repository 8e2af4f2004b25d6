"""The transformers config of AdaBERT's CNN (model_type `etk-adabert`) and its AutoConfig registration."""

from __future__ import annotations

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


def register_config() -> None:
    """Make `etk-adabert` known to transformers' AutoConfig too (idempotent), for code that reads an adabert
    artifact's config without its backbone."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if MODEL_TYPE not in CONFIG_MAPPING:
        AutoConfig.register(MODEL_TYPE, AdaBertConfig)
