"""Test settings for the whole repository: offline Hugging Face, quiet logs, fresh plugin state."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _fresh_plugins():
    """Each test starts and ends with a freshly discovered plugin manager."""
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()
