"""etk: a transfer-learning toolkit for NLP. This package is the core: plugin host, CLI, data, training."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path: str, batch_size: int = 64, backend: str = "auto"):  # noqa: ANN201 - lazy import
    """Load a model artifact or run folder for in-process prediction (see `etk_core.predict.Predictor`)."""
    from etk_core.predict import load as _load

    return _load(path, batch_size=batch_size, backend=backend)
