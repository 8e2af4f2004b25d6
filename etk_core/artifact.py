"""The model artifact: everything needed to predict with the best checkpoint, in one folder."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etk_core.errors import ArtifactError

ARTIFACT_DIR = "model"
META_FILE = "etk.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_DIR = "encoder"
FORMAT_VERSION = 1


def save_artifact(folder: Path, *, model: Any, app: Any, tokenizer: Any, encoder_config: Any,
                  config: dict[str, Any], metrics: dict[str, float]) -> Path:
    """Write the artifact under a temporary name, then swap it in, so a crash never leaves half of one."""
    from safetensors.torch import save_file

    from etk_core import __version__
    from etk_core.zoo import backbone_class

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    save_file(tensors, str(tmp / WEIGHTS_FILE))
    encoder_config.save_pretrained(tmp / ENCODER_DIR)  # classic (non-PLM) models keep it for the tokenizer
    tokenizer.save_pretrained(tmp / ENCODER_DIR)
    meta = {
        "format_version": FORMAT_VERSION,
        "etk_version": __version__,
        "app": config["app"],
        "app_state": app.state(),
        "model": config["model"],
        "backbone": backbone_class(config["model"]["name"]).name,
        "algo": config["algo"]["name"],
        "max_length": config["train"]["max_length"],
        "metrics": metrics,
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def _recover_swap(folder: Path) -> None:
    """Finish a swap that a crash interrupted between its two renames (the old artifact is complete)."""
    old = folder.with_name(f".{folder.name}.old")
    if not folder.exists() and (old / META_FILE).is_file():
        os.replace(old, folder)


def find_artifact(path: str | Path) -> Path:
    """The artifact folder given a run folder or an artifact folder."""
    path = Path(path)
    _recover_swap(path / ARTIFACT_DIR)
    for candidate in (path, path / ARTIFACT_DIR):
        if (candidate / META_FILE).is_file():
            return candidate
    if not path.exists():
        raise ArtifactError(f"{path} does not exist; give a run folder or a model artifact folder")
    raise ArtifactError(f"{path} holds no model artifact ({META_FILE} missing); give the run folder of a "
                        f"finished `etk train` or its {ARTIFACT_DIR}/ folder")


@dataclass
class LoadedArtifact:
    """An artifact loaded for inference (`model` is None when only the app was loaded)."""

    path: Path
    meta: dict[str, Any]
    app: Any
    tokenizer: Any
    model: Any = None


def load_app(path: str | Path) -> LoadedArtifact:
    """The artifact's metadata, tokenizer and app (no model weights): enough to pre- and post-process."""
    from transformers import AutoTokenizer

    from etk_core.registry import get_component

    folder = find_artifact(path)
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{folder}: artifact format {meta.get('format_version')} is not supported by this "
                            f"etk (expects {FORMAT_VERSION}); retrain or upgrade etk")
    app_cls = get_component("apps", meta["app"]["name"])
    tokenizer = AutoTokenizer.from_pretrained(folder / ENCODER_DIR)
    state = meta["app_state"]
    app = app_cls(state.get("options", meta["app"]), tokenizer, meta["max_length"], labels=state.get("labels"))
    return LoadedArtifact(folder, meta, app, tokenizer)


def load_artifact(path: str | Path) -> LoadedArtifact:
    """Rebuild app, tokenizer and the PyTorch model from an artifact folder (or a run folder)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from etk_core.registry import get_component

    loaded = load_app(path)
    encoder_config = AutoConfig.from_pretrained(loaded.path / ENCODER_DIR)
    encoder = get_component("models", loaded.meta["backbone"]).encoder_from_config(encoder_config)
    model = loaded.app.build_model(encoder)
    model.load_state_dict(load_file(str(loaded.path / WEIGHTS_FILE)))
    model.eval()
    loaded.model = model
    return loaded
