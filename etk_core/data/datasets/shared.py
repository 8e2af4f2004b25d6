"""Locating the shared benchmark folder (`shared/datasets`, beside the repository, never inside it)."""

from __future__ import annotations

import os
from pathlib import Path

from etk_core.errors import DataError

ENV = "ETK_DATASETS_DIR"


def _candidates() -> list[Path]:
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    out: list[Path] = []
    for start in starts:
        for ancestor in (start, *start.parents):
            out += [ancestor / "shared" / "datasets", ancestor.parent / "shared" / "datasets"]
    return out


def shared_datasets_dir() -> Path | None:
    """`$ETK_DATASETS_DIR`, else the first `shared/datasets` found beside the cwd or this package; or None."""
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_dir() else None
    return next((path for path in _candidates() if path.is_dir()), None)


def shared_path(dataset: str, relative: str) -> Path:
    """A file or folder inside the shared datasets folder, or a DataError saying how to point at it."""
    root = shared_datasets_dir()
    if root is None:
        configured = os.environ.get(ENV)
        where = f"{ENV}={configured} is not a folder" if configured else "no shared/datasets folder was found"
        message = f"dataset {dataset} needs the shared datasets folder ({where}); set {ENV}=/path/to/shared/datasets"
        raise DataError(message)
    path = root / relative
    if not path.exists():
        message = f"dataset {dataset}: {path} is missing; point {ENV} at a complete shared/datasets folder"
        raise DataError(message)
    return path
