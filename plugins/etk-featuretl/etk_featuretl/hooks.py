"""etk hook implementations of etk-featuretl: the feature-based TL algorithms and the sequential baseline."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_algorithms() -> list[type[Any]]:
    from etk_featuretl.baselines import SrcThenTgt
    from etk_featuretl.drss import Drss, DrssAdv
    from etk_featuretl.shared_private import FullyShared, SharedPrivate, SharedPrivateAdv

    return [FullyShared, SharedPrivate, SharedPrivateAdv, Drss, DrssAdv, SrcThenTgt]
