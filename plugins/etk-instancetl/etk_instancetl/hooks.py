"""etk hook implementations of etk-instancetl: the instance-based TL algorithms and their baselines."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_algorithms() -> list[type[Any]]:
    from etk_instancetl.baselines import Mixed, SrcOnly, TgtOnly, TlBase
    from etk_instancetl.reinforced import Mgtl, Rtl
    from etk_instancetl.ruder_plank import RuderPlank

    return [RuderPlank, Rtl, Mgtl, TgtOnly, SrcOnly, Mixed, TlBase]
