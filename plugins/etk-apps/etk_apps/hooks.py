"""etk hook implementations of etk-apps: the task definitions."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_apps() -> list[type[Any]]:
    from etk_apps.mrc import Mrc
    from etk_apps.sequence_labeling import SequenceLabeling
    from etk_apps.text_classify import TextClassify
    from etk_apps.text_match import TextMatch

    return [TextClassify, Mrc, TextMatch, SequenceLabeling]


@hookimpl
def etk_register_readers() -> list[type[Any]]:
    from etk_apps.mrc import SquadReader
    from etk_apps.sequence_labeling.reader import ConllReader

    return [SquadReader, ConllReader]


@hookimpl
def etk_register_datasets() -> list[type[Any]]:
    from etk_apps.mrc import QuacSample, SquadSample
    from etk_apps.sequence_labeling.dataset import Conll2003

    return [SquadSample, QuacSample, Conll2003]
