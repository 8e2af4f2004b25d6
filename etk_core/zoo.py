"""Resolving a `model.name` to a backbone: a registered name, or a local Hugging Face folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etk_core.errors import ConfigError
from etk_core.registry import get_component

#: The backbone that loads any local Hugging Face folder (provided by etk-zoo).
FOLDER_BACKBONE = "hf"


def backbone_class(name: str) -> type[Any]:
    """The Backbone class for a model name or a local folder."""
    if Path(name).is_dir():
        return get_component("models", FOLDER_BACKBONE)
    if "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"model folder {name} does not exist; give a local Hugging Face folder or a name "
                          f"from `etk list models`")
    return get_component("models", name)


def load_backbone(model_options: dict[str, Any]) -> tuple[Any, Any]:
    """`(encoder, tokenizer)` for the `model` config section."""
    options = dict(model_options)
    if Path(options["name"]).is_dir():
        options.setdefault("path", options["name"])
        options["path"] = options.get("path") or options["name"]
    encoder, tokenizer = backbone_class(options["name"])(options).load()
    if options.get("dropout") is not None:
        set_dropout(encoder, float(options["dropout"]))
    return encoder, tokenizer


def set_dropout(encoder: Any, probability: float) -> None:
    """Every dropout inside `encoder` (and its config, so that a saved artifact keeps it) at `probability`."""
    from torch import nn

    if not 0.0 <= probability < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), not {probability}")
    for module in encoder.modules():
        if isinstance(module, nn.Dropout):
            module.p = probability
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
        if isinstance(getattr(encoder.config, key, None), float):
            setattr(encoder.config, key, probability)


#: Model types whose position ids start after the padding id (so `padding_idx + 1` positions are never used).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer")


def max_positions(encoder: Any) -> int | None:
    """How many tokens the encoder reads at most (its learned position table), or None where it has none."""
    config = getattr(encoder, "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", 0) or 0) + 1
    return limit
