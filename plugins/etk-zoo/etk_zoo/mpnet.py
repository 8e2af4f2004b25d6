"""`mpnet-base`: the real pre-trained all-mpnet-base-v2 (opt-in: fetched by `bash scripts/get_mpnet.sh`)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Backbone

SCRIPT = "bash scripts/get_mpnet.sh"
FOLDER_NAME = "all-mpnet-base-v2"
#: Files a fetched folder must hold (the transformer part of the sentence-transformers folder).
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def models_dir() -> Path:
    """Where fetched models live: `$ETK_MODELS_DIR`, else `~/.cache/etk/models` (as in the script)."""
    root = os.environ.get("ETK_MODELS_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "etk" / "models"


def default_folder() -> Path:
    return models_dir() / FOLDER_NAME


def mpnet_folder(path: str | None, model: str = "mpnet-base") -> Path:
    """The all-mpnet-base-v2 folder (`path`, or the default one), or a one-line ConfigError saying how to get it."""
    folder = Path(path).expanduser() if path else default_folder()
    fetch = f"{SCRIPT} {shlex.quote(path)}" if path else SCRIPT
    if not folder.exists():
        if path:
            raise ConfigError(f"model.path {path!r} does not exist; fetch all-mpnet-base-v2 there with: {fetch} "
                              f"(about 400 MB), or drop model.path to use {default_folder()}")
        raise ConfigError(f"model {model!r} needs all-mpnet-base-v2 in {folder}, which does not exist; "
                          f"run: {fetch} (about 400 MB; ETK_MODELS_DIR chooses the parent folder)")
    if not folder.is_dir():
        raise ConfigError(f"model {model!r}: {folder} is a file, not a folder; pass the all-mpnet-base-v2 folder "
                          f"as model.path")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"model {model!r}: {folder} lacks {', '.join(missing)}, so it is not a complete "
                          f"all-mpnet-base-v2 folder; remove it and run: {fetch}")
    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    if model_type != "mpnet":
        raise ConfigError(f"model {model!r}: {folder / 'config.json'} is not an MPNet config "
                          f"(model_type {model_type!r}); for another encoder use --model {folder}")
    return folder


def load_tokenizer(folder: Path) -> Any:
    """The fast MPNet tokenizer of the folder (BERT uncased WordPiece, ids shifted by 4 for <s> <pad> </s> <unk>)."""
    from transformers import AutoTokenizer

    from etk_zoo._quiet import quiet_loading

    with quiet_loading():
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class MpnetBase(Backbone):
    """all-mpnet-base-v2 (pre-trained MPNet sentence encoder), from a folder fetched by scripts/get_mpnet.sh."""

    name = "mpnet-base"
    description = ("all-mpnet-base-v2, pre-trained: MPNet 12 layers, hidden 768, 109.5M params "
                   "(opt-in: bash scripts/get_mpnet.sh)")
    options = {"path": Option((str, type(None)), None,
                              "all-mpnet-base-v2 folder (null: $ETK_MODELS_DIR or ~/.cache/etk/models, "
                              "then all-mpnet-base-v2)")}

    def load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModel

        from etk_zoo._quiet import quiet_loading

        folder = mpnet_folder(self.options.get("path"), self.name)
        with quiet_loading():
            encoder = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        return encoder, load_tokenizer(folder)
