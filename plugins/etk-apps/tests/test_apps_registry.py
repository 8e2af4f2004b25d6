"""The plugin registers text_classify, and its hooks module imports without heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from etk_core.plugins import reset_plugin_manager
from etk_core.registry import get_registry


def test_text_classify_is_registered(monkeypatch):
    monkeypatch.delenv("ETK_LOAD_PLUGINS", raising=False)
    reset_plugin_manager()
    try:
        cls = get_registry("apps").get("text_classify")
        assert cls.main_metric == "accuracy" and cls.required_columns == ("text", "label")
        from etk_apps.classic import CLASSIC_OPTIONS

        assert set(cls.options) == {"pooling", "dropout", "model", *CLASSIC_OPTIONS}
    finally:
        reset_plugin_manager()


def test_hooks_and_app_import_light():
    code = ("import sys, etk_apps.hooks; etk_apps.hooks.etk_register_apps(); "
            "heavy = {'torch', 'transformers', 'numpy', 'sklearn'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
