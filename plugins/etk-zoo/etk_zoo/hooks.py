"""etk hook implementations of etk-zoo: the named backbones."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_models() -> list[type[Any]]:
    from etk_zoo.hf_folder import HfFolder
    from etk_zoo.minilm import MiniLML6
    from etk_zoo.mpnet import MpnetBase
    from etk_zoo.presets import PRESETS

    return [MiniLML6, MpnetBase, HfFolder, *PRESETS]
