"""`hf`: any local Hugging Face model folder (config.json, weights, tokenizer files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Backbone


def check_folder(path: str | None) -> Path:
    """The folder as a Path, or a one-line ConfigError saying what is missing."""
    if not path:
        raise ConfigError("model 'hf' needs a folder: pass --model /path/to/hf-folder or --set model.path=...")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model.path {path!r} is not a folder; pass a local Hugging Face model folder "
                          f"(hub ids are not downloaded)")
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model.path {path!r} has no config.json; point it at a folder written by "
                          f"save_pretrained")
    return folder


class HfFolder(Backbone):
    """A model and tokenizer from a local Hugging Face folder."""

    name = "hf"
    description = "any local Hugging Face encoder folder (--model /path/to/folder): config, weights, tokenizer"
    options = {"path": Option((str, type(None)), None, "local Hugging Face model folder", path="folder")}

    def load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from etk_zoo._quiet import quiet_loading

        path = self.options.get("path")
        folder = check_folder(path)
        with quiet_loading():
            config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            if getattr(config, "is_encoder_decoder", False):
                raise ConfigError(f"model.path {path!r}: encoder-decoder models ({config.model_type}) are not "
                                  f"supported yet; use an encoder such as BERT")
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"model.path {path!r}: no usable tokenizer files ({type(exc).__name__}); "
                                  f"save the tokenizer there with tokenizer.save_pretrained") from exc
            try:
                encoder = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
            except OSError as exc:
                raise ConfigError(f"model.path {path!r}: no weights found; save them there with "
                                  f"model.save_pretrained") from exc
        return encoder, tokenizer
