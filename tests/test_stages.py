"""Stages: a second stage starts from the first stage's written result; a run that stops inside a stage, or
between two, resumes in the right stage and ends with the uninterrupted run's weights; streams with groups
give every batch one group's examples, round-robin or in proportion."""

from __future__ import annotations

import json

import pytest
import torch

from etk_core.hookspecs import hookimpl
from etk_core.interfaces import Algorithm
from etk_core.plugins import get_plugin_manager, reset_plugin_manager
from etk_core.testing import artifact_weights, metrics_log, needs_packaged_minilm, run_cli
from etk_core.training import Stage
from etk_core.training.batching import grouped_batches

pytestmark = needs_packaged_minilm()


class TwoStages(Algorithm):
    """Stage `warm` trains the model and writes `warm/`; stage `tune` starts from those weights."""

    name = "two_stages"
    description = "test: two training stages, the second from the first's artifact"
    roles = ("train",)
    optional_roles = ("dev",)
    started_from: dict[str, torch.Tensor] = {}

    def stages(self, run):
        return ["warm", "tune"]

    def stage(self, run, name):
        model = run.build_model()
        if name == "tune":
            from etk_core.artifact import load_artifact

            model.load_state_dict(load_artifact(run.dir / "warm").model.state_dict())
            TwoStages.started_from = {k: v.clone() for k, v in model.state_dict().items()}
        return Stage(name=name, model=model, streams={"train": run.stream("train")}, dev=run.dev(),
                     artifact="warm" if name == "warm" else "model", max_steps=6, lr=1e-3 if name == "warm" else 5e-4)


class Plugin:
    @hookimpl
    def etk_register_algorithms(self):
        return [TwoStages]


class Stop(BaseException):
    """Raised instead of a SIGKILL right after a checkpoint (the folder is then what a kill leaves)."""


@pytest.fixture
def plugin():
    reset_plugin_manager()
    get_plugin_manager().register(Plugin(), name="two-stages")
    yield
    reset_plugin_manager()


def _args(out, *extra):
    return ["train", "--algo", "two_stages", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
            "--data", "dev=synthetic_sentiment:dev", "--set", "data.max_rows=64", "--set", "train.batch_size=8",
            "--set", "train.max_length=32", "--set", "train.eval_every=3", "--set", "train.checkpoint_every=2",
            "--set", "train.threads=1", "--no-export", "--json", "--output", str(out), *extra]


def _stop_after(monkeypatch, checkpoints):
    from etk_core.training import loop

    original, written = loop.TrainingLoop._checkpoint, []

    def checkpoint(self, folder):
        original(self, folder)
        written.append((self.stage.name, self.state["step"]))
        if len(written) == checkpoints:
            raise Stop(written[-1])

    monkeypatch.setattr(loop.TrainingLoop, "_checkpoint", checkpoint)


def test_second_stage_starts_from_the_first_stages_result(tmp_path, plugin):
    result = run_cli(_args(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    from safetensors.torch import load_file

    first = load_file(str(tmp_path / "run" / "warm" / "model.safetensors"))
    assert all(torch.equal(first[key], TwoStages.started_from[key]) for key in first)
    records = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert list(records) == ["warm", "tune"] and records["warm"]["steps"] == 6
    assert [(r["stage"], r["step"]) for r in metrics_log(tmp_path / "run")] == \
        [("warm", 3), ("warm", 6), ("tune", 3), ("tune", 6)]
    assert json.loads(result.output.strip().splitlines()[-1])["steps"] == 12


@pytest.mark.parametrize("checkpoints", [2, 3, 5], ids=["inside-first", "end-of-first", "inside-second"])
def test_stopped_run_resumes_in_its_stage_to_the_uninterrupted_weights(tmp_path, plugin, monkeypatch, checkpoints):
    full = run_cli(_args(tmp_path / "full"))
    assert full.exit_code == 0, full.output
    with monkeypatch.context() as patch:
        _stop_after(patch, checkpoints)
        with pytest.raises(Stop):
            run_cli(_args(tmp_path / "stopped"))
    resumed = run_cli(_args(tmp_path / "stopped", "--resume"))
    assert resumed.exit_code == 0, resumed.output
    expected, got = artifact_weights(tmp_path / "full"), artifact_weights(tmp_path / "stopped")
    for key, value in expected.items():
        assert (got[key] - value).abs().max() <= 1e-6, key
    rows = [(r["stage"], r["kind"], r["step"]) for r in metrics_log(tmp_path / "stopped", None)]
    assert rows == [(r["stage"], r["kind"], r["step"]) for r in metrics_log(tmp_path / "full", None)]


@pytest.mark.parametrize("mix", ["round_robin", "proportional"])
def test_grouped_batches_hold_one_group_each(mix):
    groups = ["a"] * 40 + ["b"] * 20 + ["c"] * 8
    batches = grouped_batches([5] * len(groups), groups, 4, seed=1, epoch=0, mix=mix)
    assert sorted(i for indices, _ in batches for i in indices) == list(range(len(groups)))
    assert all({groups[i] for i in indices} == {group} for indices, group in batches)
    order = [group for _, group in batches]
    if mix == "round_robin":
        assert order[:6] == ["a", "b", "c", "a", "b", "c"]
    else:
        assert order != sorted(order) and order.count("a") == 10
    assert grouped_batches([5] * len(groups), groups, 4, seed=1, epoch=1, mix=mix) != batches
