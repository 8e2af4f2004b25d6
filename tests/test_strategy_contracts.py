"""The built-in strategies pass the contract a third-party strategy would (etk_core.testing.StrategyContract)."""

from __future__ import annotations

import importlib.util

import pytest

from etk_core.testing import StrategyContract, needs_packaged_minilm

pytestmark = needs_packaged_minilm()


class TestSingle(StrategyContract):
    component_name = "single"


class TestDataParallel(StrategyContract):
    component_name = "ddp"
    strategy_args = ["--nproc", "2"]


@pytest.mark.skipif(importlib.util.find_spec("megatron") is None, reason="megatron-core is not installed")
class TestMegatron(StrategyContract):
    # pipeline stages with dropout on: the gathered artifact is the model evaluated during training
    component_name = "megatron"
    strategy_args = ["--set", "strategy.pp=2", "--set", "strategy.microbatches=4"]
