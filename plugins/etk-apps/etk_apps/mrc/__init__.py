"""mrc: extractive reading comprehension (span extraction over passage windows; `hae` for dialogues)."""

from etk_apps.mrc.app import Mrc
from etk_apps.mrc.datasets import QuacSample, SquadSample
from etk_apps.mrc.reader import SquadReader

__all__ = ["Mrc", "QuacSample", "SquadReader", "SquadSample"]
