"""etk hook implementations of etk-apps: the task definitions."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_apps() -> list[type[Any]]:
    from etk_apps.text_classify import TextClassify

    return [TextClassify]
