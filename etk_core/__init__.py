"""etk: a transfer-learning toolkit for NLP. This package is the core: plugin host, CLI, data, training."""

from __future__ import annotations

__version__ = "0.1.0"

# The plugin host fills the registries: importing it installs their source (the registry never imports it).
from etk_core import plugins as _plugins  # noqa: E402, F401


def load(path: str, batch_size: int = 64, backend: str = "auto"):  # noqa: ANN201 - lazy import
    """Load a model artifact or run folder for in-process prediction (see `etk_core.predict.Predictor`)."""
    from etk_core.predict import load as _load

    return _load(path, batch_size=batch_size, backend=backend)


def train(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - lazy import; see etk_core.api.train
    """Train a run and return its RunResult (see `etk_core.api.train`)."""
    from etk_core.api import train as _train

    return _train(*args, **kwargs)
