"""etk: a transfer-learning toolkit for NLP. This package is the core: plugin host, CLI, data, training."""

from __future__ import annotations

__version__ = "0.1.0"
