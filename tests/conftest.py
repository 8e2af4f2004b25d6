"""Fixtures of the core's tests."""

from __future__ import annotations

import pytest

from etk_core.plugins import reset_plugin_manager


@pytest.fixture
def builtins_only(monkeypatch: pytest.MonkeyPatch):
    """Load none but the core's built-in components."""
    monkeypatch.setenv("ETK_LOAD_PLUGINS", "")
    reset_plugin_manager()
    yield
    reset_plugin_manager()
