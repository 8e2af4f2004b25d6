"""Every distillation algorithm passes the Algorithm contract with a bert-tiny teacher: SIGKILL + --resume
gives the uninterrupted run's weights (the teacher's cached outputs are reused), ddp trains, and the
metrics rows follow the documented format."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from etk_core.testing import AlgorithmContract, needs_packaged_minilm

pytestmark = needs_packaged_minilm()

TEACHER: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _teacher(tiny_teacher: Path) -> None:
    TEACHER["path"] = tiny_teacher


class DistillContract(AlgorithmContract):
    def train_args(self, output: Path, *extra: str) -> list[str]:
        return super().train_args(output, "--set", f"algo.teacher={TEACHER['path']}", *extra)


class TestKd(DistillContract):
    component_name = "kd"


class TestPkd(DistillContract):
    component_name = "pkd"


class TestDistilBert(DistillContract):
    component_name = "distilbert"


class TestTinyBert(DistillContract):
    component_name = "tinybert"
    # the intermediate stage checkpoints at steps 3, 6, 9 and 12: the kill lands in the prediction stage
    kill_after_checkpoints: ClassVar[int] = 5
    algo_sets: ClassVar[list[str]] = []

    def test_stages_are_intermediate_then_prediction(self, tmp_path_factory: Any) -> None:
        from etk_core.testing import metrics_log

        full, figures = self._uninterrupted(tmp_path_factory)
        assert [row["stage"] for row in metrics_log(full)][-1] == "prediction"
        trained = metrics_log(full, "train")
        first = [row for row in trained if row["stage"] == "intermediate"]
        assert first and {"loss_attention", "loss_hidden", "loss_embedding"} <= first[0].keys()
        assert (full / "intermediate" / "model.safetensors").is_file()
        assert figures["steps"] == 24
