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
    return backbone_class(options["name"])(options).load()
