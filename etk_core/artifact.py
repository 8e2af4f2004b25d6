"""The model artifact: everything needed to predict with the best checkpoint, in one folder."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etk_core.errors import ArtifactError, DamagedFileError
from etk_core.io import damaged_files, file_digests, save_tensors, temp_path

ARTIFACT_DIR = "model"
META_FILE = "etk.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_DIR = "encoder"
#: Folder of a run holding one more artifact per domain, for algorithms that train a model per domain
#: (`RUN/domains/NAME/`; `etk evaluate RUN --domain NAME` reads one).
DOMAINS_DIR = "domains"
#: Key of etk.json describing how an algorithm's model wraps the app model (from the model's `etk_layout`
#: attribute); `Algorithm.artifact_model` rebuilds such a model.
LAYOUT_KEY = "layout"
FORMAT_VERSION = 1
#: Key of etk.json holding the sha256 of every file the artifact was written with (the ONNX export keeps
#: its own in onnx.json).
DIGESTS_KEY = "files"
_RETRAIN = "re-train it (or copy the artifact again)"


def save_artifact(folder: Path, *, model: Any, app: Any, tokenizer: Any, encoder_config: Any,
                  config: dict[str, Any], metrics: dict[str, float]) -> Path:
    """Write the artifact under a temporary name, then swap it in, so a crash never leaves half of one."""

    from etk_core import __version__
    from etk_core.zoo import backbone_class

    folder = Path(folder)
    tmp = temp_path(folder)
    tmp.mkdir(parents=True)
    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    save_tensors(tensors, tmp / WEIGHTS_FILE)
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
        DIGESTS_KEY: file_digests(tmp),
    }
    layout = getattr(model, "etk_layout", None)
    if layout is not None:
        meta[LAYOUT_KEY] = layout
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    swap_in(tmp, folder)
    return folder


def swap_in(tmp: Path, folder: Path) -> None:
    """Replace the artifact `folder` by the complete folder `tmp` (two renames; `find_artifact` finishes a
    swap that a crash cut between them) and remove temporaries that killed writers left beside it."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    for stale in [*folder.parent.glob(f".{folder.name}.*.tmp"), folder.with_name(f".{folder.name}.tmp")]:
        shutil.rmtree(stale, ignore_errors=True)


def clone(folder: Path, skip: set[str]) -> Path:
    """A hidden sibling copy of the artifact `folder` (hard links where the file system allows) without
    the top-level names in `skip`, to change and then `swap_in`."""
    tmp = temp_path(folder)

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(folder, tmp, copy_function=link, ignore=lambda where, names: [
        name for name in names if Path(where) == folder and name in skip])
    return tmp


def stored_weights(run_dir: Path) -> list[tuple[Path, str]]:
    """The weights file and its recorded sha256 of each artifact in a run folder (checkpoints link to
    them instead of storing the same bytes again)."""
    found = []
    for meta_file in sorted(Path(run_dir).glob(f"*/{META_FILE}")):
        try:
            digest = json.loads(meta_file.read_text(encoding="utf-8"))[DIGESTS_KEY][WEIGHTS_FILE]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append((meta_file.parent / WEIGHTS_FILE, digest))
    return found


def _recover_swap(folder: Path) -> None:
    """Finish a swap that a crash interrupted between its two renames (the old artifact is complete)."""
    old = folder.with_name(f".{folder.name}.old")
    if not folder.exists() and (old / META_FILE).is_file():
        os.replace(old, folder)


def find_artifact(path: str | Path, domain: str | None = None) -> Path:
    """The artifact folder given a run folder or an artifact folder; with `domain`, the run's artifact of that
    domain (`RUN/domains/NAME`, for algorithms that train one model per domain)."""
    path = Path(path)
    if domain is not None:
        path = domain_artifact(path, domain)
    _recover_swap(path)
    _recover_swap(path / ARTIFACT_DIR)
    for candidate in (path, path / ARTIFACT_DIR):
        if (candidate / META_FILE).is_file():
            return candidate
    if not path.exists():
        raise ArtifactError(f"{path} does not exist; give a run folder or a model artifact folder")
    raise ArtifactError(f"{path} holds no model artifact ({META_FILE} missing); give the run folder of a "
                        f"finished `etk train` or its {ARTIFACT_DIR}/ folder")


def domain_artifact(path: Path, domain: str) -> Path:
    """`RUN/domains/NAME` of a run folder (or of the folder above a run's `model/`)."""
    run = path.parent if path.name == ARTIFACT_DIR and not (path / DOMAINS_DIR).is_dir() else path
    folder = run / DOMAINS_DIR
    names = sorted(entry.name for entry in folder.iterdir() if (entry / META_FILE).is_file()) \
        if folder.is_dir() else []
    if domain not in names:
        where = f"its domains: {', '.join(names)}" if names else "it holds no per-domain artifacts (only " \
            "algorithms that train a model per domain write them)"
        raise ArtifactError(f"{run} has no artifact of domain {domain!r}; {where}")
    return folder / domain


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
    from etk_core.registry import get_component

    folder = find_artifact(path)
    meta = read_meta(folder)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{folder}: artifact format {meta.get('format_version')} is not supported by this "
                            f"etk (expects {FORMAT_VERSION}); retrain or upgrade etk")
    digests = meta.get(DIGESTS_KEY) or {ENCODER_DIR + "/config.json": None}
    check_files(folder, {name: digest for name, digest in digests.items() if name != WEIGHTS_FILE})
    app_cls = get_component("apps", meta["app"]["name"])
    try:
        tokenizer = _backbone_or_default(meta["backbone"]).load_tokenizer(folder / ENCODER_DIR)
    except Exception as exc:  # tokenizers and transformers raise many types for a garbled file
        raise DamagedFileError(f"{folder / ENCODER_DIR}: damaged artifact tokenizer ({type(exc).__name__}); "
                               f"{_RETRAIN}") from None
    state = meta["app_state"]
    app = app_cls(state.get("options", meta["app"]), tokenizer, meta["max_length"], labels=state.get("labels"))
    return LoadedArtifact(folder, meta, app, tokenizer)


def _backbone_or_default(name: str) -> Any:
    """The artifact's backbone class, or the base Backbone where its plugin is not installed (an exported
    graph serves without the plugin that trained it)."""
    from etk_core.errors import EtkError
    from etk_core.interfaces import Backbone
    from etk_core.registry import get_component

    try:
        return get_component("models", name)
    except EtkError:
        return Backbone


def read_meta(folder: Path) -> dict[str, Any]:
    """The artifact record (etk.json); DamagedFileError where it is not a readable record."""
    file = folder / META_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not all(key in meta for key in ("app", "app_state", "backbone")):
            raise ValueError("not an artifact record")
    except (OSError, ValueError) as exc:
        raise DamagedFileError(f"{file}: damaged artifact record ({type(exc).__name__}); {_RETRAIN}") from None
    return meta


def verify(folder: Path, backend: str = "torch") -> None:
    """Check an artifact's record and the files that `backend` (torch, onnx, onnx-int8) loads against their
    digests without loading anything: DamagedFileError naming the first damaged file."""
    from etk_core.export.runtime import DIGESTS_KEY as GRAPH_DIGESTS
    from etk_core.export.runtime import ONNX_FILES, export_meta, reexport_hint

    meta = read_meta(folder)
    digests = meta.get(DIGESTS_KEY) or {ENCODER_DIR + "/config.json": None}
    check_files(folder, {name: digest for name, digest in digests.items()
                         if backend == "torch" or name != WEIGHTS_FILE})
    if backend != "torch":
        graph = ONNX_FILES["int8" if backend == "onnx-int8" else "fp32"]
        check_files(folder, {graph: (export_meta(folder).get(GRAPH_DIGESTS) or {}).get(graph)},
                    fix=reexport_hint(folder))


def check_files(folder: Path, digests: dict[str, str | None], fix: str = _RETRAIN) -> None:
    """DamagedFileError naming the first file of `digests` (relative path -> sha256, None: only that it
    exists) missing under `folder` or not matching."""
    missing = [name for name, digest in digests.items() if digest is None and not (folder / name).is_file()]
    wrong = (missing[0], "is missing") if missing else damaged_files(
        folder, {name: digest for name, digest in digests.items() if digest is not None})
    if wrong:
        raise DamagedFileError(f"{folder / wrong[0]}: damaged artifact file ({wrong[1]}); {fix}")


def load_artifact(path: str | Path, loaded: LoadedArtifact | None = None) -> LoadedArtifact:
    """Rebuild app, tokenizer and the PyTorch model from an artifact folder (or a run folder); `loaded`:
    its app, already loaded with `load_app`."""
    from safetensors.torch import load_file

    from etk_core.registry import get_component

    loaded = loaded or load_app(path)
    weights = loaded.path / WEIGHTS_FILE
    check_files(loaded.path, {WEIGHTS_FILE: (loaded.meta.get(DIGESTS_KEY) or {}).get(WEIGHTS_FILE)})
    backbone = get_component("models", loaded.meta["backbone"])
    try:
        encoder_config = backbone.load_config(loaded.path / ENCODER_DIR)
    except Exception as exc:  # a garbled config.json
        raise DamagedFileError(f"{loaded.path / ENCODER_DIR / 'config.json'}: damaged artifact file "
                               f"({type(exc).__name__}); {_RETRAIN}") from None

    def build() -> Any:
        return loaded.app.build_model(backbone.encoder_from_config(encoder_config))

    layout = loaded.meta.get(LAYOUT_KEY)
    # an algorithm whose model wraps the app's (shared and private encoders) rebuilds it; its plugin must be
    # installed for PyTorch (an exported graph serves without it)
    model = build() if layout is None else \
        get_component("algorithms", loaded.meta["algo"]).artifact_model(build, layout)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors' own error types for a cut or garbled file
        raise DamagedFileError(f"{weights}: damaged artifact file ({type(exc).__name__}); {_RETRAIN}") from None
    model.load_state_dict(state)
    model.eval()
    loaded.model = model
    return loaded
