"""The plugin registers every backbone name, and its hooks module imports without heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from etk_core.plugins import get_plugin_manager, reset_plugin_manager
from etk_core.registry import get_registry

NAMES = {"minilm-l6", "hf", "bert-tiny", "bert-mini", "bert-small", "bert-medium", "bert-base", "bert-large",
         "mpnet-base"}


def test_models_are_registered(monkeypatch):
    monkeypatch.delenv("ETK_LOAD_PLUGINS", raising=False)
    reset_plugin_manager()
    try:
        assert NAMES <= set(get_registry("models").names())
        assert get_plugin_manager().infos["zoo"].distribution == "etk-zoo"
        for name in NAMES:
            cls = get_registry("models").get(name)
            assert cls.description and "\n" not in cls.description
    finally:
        reset_plugin_manager()


def test_hooks_import_is_light():
    code = ("import sys, etk_zoo.hooks; heavy = {'torch', 'transformers'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
