"""Killing `etk train` with SIGKILL and resuming gives the same result as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

from etk_core.testing import metrics_log

ARGS = ["train", "--app", "text_classify", "--algo", "finetune", "--model", "bert-tiny",
        "--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev",
        "--set", "train.epochs=2", "--set", "train.batch_size=8", "--set", "train.lr=1e-3",
        "--set", "train.max_length=64", "--set", "train.eval_every=40", "--set", "train.checkpoint_every=10",
        "--set", "train.threads=1"]


def _etk(args, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "etk_core", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _checkpoint_step(run):
    pointer = run / "checkpoints" / "LATEST"
    try:
        return int(pointer.read_text().strip().split("-")[1])
    except (OSError, IndexError, ValueError):
        return 0


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    reference = _etk([*ARGS, "--output", str(full), "--json"])
    out, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err.decode()

    victim = _etk([*ARGS, "--output", str(killed)])
    deadline = time.time() + 300
    while _checkpoint_step(killed) < 50 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    interrupted_at = _checkpoint_step(killed)
    assert 0 < interrupted_at < 200

    resumed = _etk([*ARGS, "--output", str(killed), "--resume", "--json"])
    out2, err2 = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err2.decode()

    first, second = json.loads(out.decode().splitlines()[-1]), json.loads(out2.decode().splitlines()[-1])
    assert second["dev_accuracy"] == first["dev_accuracy"]
    assert second["steps"] == first["steps"]
    log_full = metrics_log(full)
    log_killed = metrics_log(killed)
    assert [r["step"] for r in log_killed] == [r["step"] for r in log_full]
    assert [r["accuracy"] for r in log_killed] == [r["accuracy"] for r in log_full]
    weights_full = load_file(str(full / "model" / "model.safetensors"))
    weights_killed = load_file(str(killed / "model" / "model.safetensors"))
    for key, value in weights_full.items():
        assert (weights_killed[key] - value).abs().max() < 1e-5, key
