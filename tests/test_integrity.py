"""Damaged files on disk: digests recorded and checked, one line naming the file (exit 3), `--resume` falls
back to the newest intact checkpoint; retention, weights stored once, the umask, export temporaries."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat

import pytest
from safetensors.torch import load_file

from etk_core.io import sha256
from etk_core.run import LOCK_FILE
from etk_core.testing import artifact_weights, run_cli, train_run

TRAIN = ["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
         "--data", "dev=synthetic_sentiment:dev", "--set", "train.max_steps=20", "--set", "train.batch_size=16",
         "--set", "train.lr=2e-3", "--set", "train.max_length=64", "--set", "train.eval_every=10",
         "--set", "train.checkpoint_every=5", "--set", "train.keep_checkpoints=3", "--set", "train.threads=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run (exported) written under umask 027."""
    previous = os.umask(0o027)
    try:
        return train_run(tmp_path_factory.mktemp("integrity"), TRAIN)
    finally:
        os.umask(previous)


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run to damage."""
    import yaml

    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    (copy / "config.yaml").write_text(yaml.safe_dump({**config, "output": str(copy)}))  # as if trained here
    return copy


def _steps(run):
    return sorted(path.name for path in (run / "checkpoints").glob("step-*"))


def _one_line_error(result, code=3):
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def _snapshot(folder):
    return {str(path.relative_to(folder)): sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# -- permissions -----------------------------------------------------------------------------------

def test_run_files_follow_the_umask(trained):
    files = [path for path in trained.rglob("*") if path.is_file()]
    assert {trained / "config.yaml", trained / "model" / "model.safetensors", trained / "model" / "model.onnx",
            trained / "checkpoints" / "step-0000020" / "model.safetensors"} <= set(files)
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files
            if stat.S_IMODE(path.stat().st_mode) != 0o640} == {}


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_and_tensors_follow_the_umask(tmp_path, mask, mode):
    import torch

    from etk_core.io import atomic_write_text, save_tensors

    previous = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
        save_tensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    finally:
        os.umask(previous)
    assert [oct(stat.S_IMODE((tmp_path / name).stat().st_mode)) for name in ("config.yaml", "model.safetensors")] \
        == [oct(mode)] * 2


def test_a_module_shared_by_two_parts_saves_and_loads_back_into_one_parameter(tmp_path):
    import torch
    from safetensors.torch import load_file

    from etk_core.io import save_tensors

    shared = torch.nn.Embedding(5, 3)
    model = torch.nn.ModuleDict({"a": shared, "b": torch.nn.ModuleDict({"table": shared})})
    save_tensors(model.state_dict(), tmp_path / "model.safetensors")  # safetensors refuses shared storage
    again = torch.nn.ModuleDict({"a": torch.nn.Embedding(5, 3)})
    again["b"] = torch.nn.ModuleDict({"table": again["a"]})
    again.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert torch.equal(again["a"].weight, shared.weight) and again["b"]["table"] is again["a"]


# -- digests, retention, weights once ----------------------------------------------------------------

def test_checkpoints_and_artifacts_record_their_digests(trained):
    assert _steps(trained) == ["step-0000010", "step-0000015", "step-0000020"]  # keep_checkpoints=3
    for step in _steps(trained):
        folder = trained / "checkpoints" / step
        digests = json.loads((folder / "state.json").read_text())["files"]
        assert set(digests) == {"model.safetensors", "training.pt", "algorithm.pt"}
        assert all(sha256(folder / name) == digest for name, digest in digests.items())
    model = trained / "model"
    digests = json.loads((model / "etk.json").read_text())["files"]
    assert {"model.safetensors", "encoder/config.json"} <= set(digests)
    assert all(sha256(model / name) == digest for name, digest in digests.items())
    graphs = json.loads((model / "onnx.json").read_text())["files"]
    assert graphs == {"model.onnx": sha256(model / "model.onnx")}
    # a finished stage's checkpoint holds no optimiser state (nothing trains it again)
    assert (trained / "checkpoints" / "step-0000020" / "training.pt").stat().st_size < \
        (trained / "checkpoints" / "step-0000015" / "training.pt").stat().st_size / 10


def test_weights_identical_to_the_artifact_are_stored_once(tmp_path):
    run = tmp_path / "nodev"
    result = run_cli(["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
                      "--set", "train.max_steps=4", "--set", "train.batch_size=16", "--set", "train.max_length=32",
                      "--no-export", "--output", str(run)])
    assert result.exit_code == 0, result.output
    artifact = run / "model" / "model.safetensors"
    checkpoint = run / "checkpoints" / "step-0000004" / "model.safetensors"
    assert artifact.stat().st_ino == checkpoint.stat().st_ino and artifact.stat().st_nlink == 2


# -- resume ----------------------------------------------------------------------------------------

def _damage_state(path):
    path.write_text("{garbage", encoding="utf-8")


@pytest.mark.parametrize("name, damage", [("training.pt", _truncate), ("model.safetensors", _truncate),
                                          ("state.json", _damage_state)],
                         ids=["truncated-training-pt", "truncated-safetensors", "garbage-state-json"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(trained, run, name, damage, caplog):
    # the finished run's last checkpoint (step 20) is damaged: resume from step 15, retrain to the same weights
    damage(run / "checkpoints" / "step-0000015" / name)  # an older one damaged too: skipped as well
    damage(run / "checkpoints" / "step-0000020" / name)
    result = run_cli([*TRAIN, "--output", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.name == "etk.resume"]
    assert len(warnings) == 1 and f"step-0000020/{name}" in warnings[0] and "step-0000010" in warnings[0]
    expected, got = artifact_weights(trained), artifact_weights(run)
    assert all((got[key] - value).abs().max() <= 1e-6 for key, value in expected.items())
    assert (run / "checkpoints" / "LATEST").read_text() == "step-0000020"


@pytest.mark.parametrize("name, damage", [("training.pt", _truncate), ("model.safetensors", _truncate),
                                          ("state.json", _damage_state)],
                         ids=["truncated-training-pt", "truncated-safetensors", "garbage-state-json"])
def test_resume_without_an_intact_checkpoint_says_how_to_restart(run, name, damage):
    for step in ("step-0000010", "step-0000015"):
        shutil.rmtree(run / "checkpoints" / step)
    damage(run / "checkpoints" / "step-0000020" / name)
    before = _snapshot(run)
    error = _one_line_error(run_cli([*TRAIN, "--output", str(run), "--resume"]))
    assert f"step-0000020/{name}" in error and "without --resume" in error
    assert _snapshot(run) == before


def test_damaged_checkpoint_of_an_older_etk_is_refused_on_load(run):
    for step in ("step-0000010", "step-0000015"):
        shutil.rmtree(run / "checkpoints" / step)
    folder = run / "checkpoints" / "step-0000020"
    state = json.loads((folder / "state.json").read_text())
    state.pop("files")  # written before digests
    state["done"] = False
    (folder / "state.json").write_text(json.dumps(state))
    _truncate(folder / "model.safetensors")
    error = _one_line_error(run_cli([*TRAIN, "--output", str(run), "--resume"]))
    assert "step-0000020/model.safetensors: damaged checkpoint file" in error


def test_latest_naming_a_missing_step_falls_back_or_refuses(trained, run, caplog):
    (run / "checkpoints" / "LATEST").write_text("step-0000099")
    shutil.rmtree(run / "checkpoints" / "step-0000020")
    result = run_cli([*TRAIN, "--output", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert "names step-0000099, which is missing" in caplog.text and "older intact checkpoint" in caplog.text
    assert caplog.text.rstrip().endswith("step-0000015")
    expected, got = artifact_weights(trained), artifact_weights(run)
    assert all((got[key] - value).abs().max() <= 1e-6 for key, value in expected.items())
    for step in _steps(run):
        shutil.rmtree(run / "checkpoints" / step)
    (run / "checkpoints" / "LATEST").write_text("step-0000099")
    error = _one_line_error(run_cli([*TRAIN, "--output", str(run), "--resume"]))
    assert "step-0000099, which is missing" in error and "without --resume" in error


class _Payload:
    """Unpickling it calls os.system: what a crafted training.pt would do under weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_in_a_checkpoint_is_refused(run, tmp_path):
    import torch

    marker = tmp_path / "pwned"
    folder = run / "checkpoints" / "step-0000015"
    for step in ("step-0000010", "step-0000020"):
        shutil.rmtree(run / "checkpoints" / step)
    (run / "checkpoints" / "LATEST").write_text("step-0000015")
    good = torch.load(folder / "training.pt", weights_only=True)
    torch.save({**good, "rng": _Payload(marker)}, folder / "training.pt", pickle_protocol=pickle.DEFAULT_PROTOCOL)
    state = json.loads((folder / "state.json").read_text())
    state["files"]["training.pt"] = sha256(folder / "training.pt")  # the attacker fixes the digest too
    (folder / "state.json").write_text(json.dumps(state))
    error = _one_line_error(run_cli([*TRAIN, "--output", str(run), "--resume"]))
    assert "step-0000015/training.pt: damaged checkpoint file (UnpicklingError)" in error
    assert not marker.exists()


# -- artifacts -------------------------------------------------------------------------------------

def _garbage(path):
    path.write_bytes(b"\x00garbage\xff" * 100)


def _missing(path):
    path.unlink()


ARTIFACT_DAMAGE = [("model.safetensors", _truncate, "torch"), ("model.onnx", _garbage, "onnx"),
                   ("etk.json", _damage_state, "torch"), ("encoder/config.json", _missing, "torch")]


def _commands(run, backend, tmp_path):
    return {"predict": ["predict", str(run), "--input", "synthetic_sentiment:test", "--output",
                        str(tmp_path / "p.jsonl"), "--backend", backend],
            "evaluate": ["evaluate", str(run), "--data", "dev=synthetic_sentiment:dev", "--backend", backend],
            "export": ["export", str(run)],
            "serve": ["serve", str(run), "--backend", backend, "--port", "0"]}  # refused before it binds


@pytest.mark.parametrize("command, name, damage, backend", [
    pytest.param(command, name, damage, backend, id=f"{command}-{label}")
    for command in ("predict", "evaluate", "export", "serve")
    for (name, damage, backend), label in zip(ARTIFACT_DAMAGE, ["truncated-safetensors", "garbage-onnx",
                                                                 "invalid-etk-json", "missing-encoder-config"])
    if not (command == "export" and name == "model.onnx")])  # export writes a new graph over a damaged one
def test_damaged_artifact_is_one_line_naming_the_file(run, tmp_path, command, name, damage, backend):
    damage(run / "model" / name)
    before = _snapshot(run)
    error = _one_line_error(run_cli(_commands(run, backend, tmp_path)[command]))
    assert f"model/{name}" in error and "damaged" in error
    assert ("etk export" if name == "model.onnx" else "re-train") in error
    assert _snapshot(run) == before


def test_artifacts_without_digests_still_load(run, tmp_path):
    for record in ("etk.json", "onnx.json"):
        path = run / "model" / record
        meta = json.loads(path.read_text())
        meta.pop("files")
        path.write_text(json.dumps(meta))
    for backend in ("torch", "onnx"):
        result = run_cli(_commands(run, backend, tmp_path)["predict"])
        assert result.exit_code == 0, result.output


def test_export_cleans_stale_temporaries_and_swaps_graph_and_record_together(run):
    model = run / "model"
    (run / ".model.123-abcd.tmp").mkdir()  # a killed export's staging copy
    (model / "tmpk1ll3d").mkdir()  # what an older etk's killed export left inside the artifact
    (model / "tmpk1ll3d" / "model.onnx").write_bytes(b"x" * 1000)
    weights = load_file(str(model / "model.safetensors"))
    result = run_cli(["export", str(run), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    hidden = [path.name for path in run.iterdir() if path.name.startswith(".") and path.name != LOCK_FILE]
    assert hidden == []  # no temporaries left (the lock file is the run's, see etk_core.run.lock_folder)
    assert not (model / "tmpk1ll3d").exists()
    record = json.loads((model / "onnx.json").read_text())
    assert record["files"] == {name: sha256(model / name) for name in ("model.onnx", "model.int8.onnx")}
    assert load_file(str(model / "model.safetensors")).keys() == weights.keys()
    result = run_cli(["export", str(run)])  # without int8: the old int8 graph goes with the swap
    assert result.exit_code == 0, result.output
    assert not (model / "model.int8.onnx").exists()
