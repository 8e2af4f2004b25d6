"""SIGKILL at seeded random moments during training, during checkpoint writing and during export; then
`--resume` / a new export gives the uninterrupted run's weights and an intact artifact.

Every run is a real process, forked from one warm "zygote" process that has already imported torch and
transformers: a fresh interpreter would spend most of each run importing them."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from etk_core.run import LOCK_FILE
from etk_core.testing import artifact_weights, metrics_log

TOTAL = 30
ARGS = ["train", "--app", "text_classify", "--algo", "finetune", "--model", "bert-tiny",
        "--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev",
        "--set", f"train.max_steps={TOTAL}", "--set", "train.batch_size=8", "--set", "train.lr=1e-3",
        "--set", "train.max_length=64", "--set", "train.eval_every=10", "--set", "train.checkpoint_every=2",
        "--set", "train.threads=1", "--no-export"]

_ZYGOTE = textwrap.dedent("""
    import json, os, sys
    import onnxruntime, torch, transformers  # the slow imports, done once
    import etk_core.cli.main, etk_core.export.onnx_export, etk_core.run, etk_core.training.stages
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["do"] == "wait":
            _, status = os.waitpid(request["pid"], 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            os.environ.update(request["env"])
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            sys.argv = ["etk", *request["args"]]
            code = 0
            try:
                etk_core.cli.main.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        print(pid, flush=True)
""")


class Zygote:
    """Starts `etk` processes by fork from a warm interpreter; `start` gives the pid, `wait` the exit code
    (negative: the signal that ended it)."""

    def __init__(self, folder: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", _ZYGOTE], env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"
        self.folder, self.count = folder, 0

    def _ask(self, request: dict) -> int:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def start(self, args: list[str], env: dict[str, str] | None = None) -> tuple[int, Path]:
        self.count += 1
        log = self.folder / f"etk-{self.count}.log"
        return self._ask({"do": "run", "args": args, "env": env or {}, "log": str(log)}), log

    def wait(self, pid: int) -> int:
        return self._ask({"do": "wait", "pid": pid})

    def run(self, args: list[str], env: dict[str, str] | None = None) -> int:
        pid, log = self.start(args, env)
        code = self.wait(pid)
        assert code == 0, log.read_text()
        return code

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    zygote = Zygote(tmp_path_factory.mktemp("logs"))
    yield zygote
    zygote.close()


@pytest.fixture(scope="module")
def reference(zygote, tmp_path_factory):
    """The uninterrupted run."""
    run = tmp_path_factory.mktemp("reference") / "run"
    zygote.run([*ARGS, "--output", str(run)])
    return run


def _latest_step(run: Path) -> int:
    try:
        return int((run / "checkpoints" / "LATEST").read_text().strip().split("-")[1])
    except (OSError, IndexError, ValueError):
        return 0


def _assert_same_result(run: Path, reference: Path) -> None:
    expected, got = artifact_weights(reference), artifact_weights(run)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert (got[key] - value).abs().max() <= 1e-6, key
    last = [load_file(str(folder / "checkpoints" / f"step-{TOTAL:07d}" / "model.safetensors"))
            for folder in (reference, run)]
    assert all((last[1][key] - value).abs().max() <= 1e-6 for key, value in last[0].items())
    rows = [[(r["step"], r["accuracy"]) for r in metrics_log(folder)] for folder in (reference, run)]
    assert rows[0] == rows[1]


def test_sigkill_at_random_moments_of_training_then_resume(zygote, reference, tmp_path):
    rng = random.Random(1501)
    run = tmp_path / "run"
    kills = sorted(rng.sample(range(1, TOTAL - 8), 5))
    for number, target in enumerate(kills):
        args = [*ARGS, "--output", str(run), *(["--resume"] if number else [])]
        pid, log = zygote.start(args)
        deadline = time.time() + 120
        while _latest_step(run) < target and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside a step, or a checkpoint being written
        os.kill(pid, signal.SIGKILL)
        assert zygote.wait(pid) == -signal.SIGKILL, log.read_text()
    zygote.run([*ARGS, "--output", str(run), "--resume"])
    _assert_same_result(run, reference)


def test_sigkill_while_a_checkpoint_is_written_then_resume(zygote, reference, tmp_path):
    rng = random.Random(1502)
    run = tmp_path / "run"
    points = [(rng.randint(1, 2), rng.randint(1, 4)) for _ in range(5)]
    points[0] = (points[0][0], 3)  # at least once: the folder renamed in, LATEST not yet pointing at it
    for number, (checkpoint, point) in enumerate(points):
        args = [*ARGS, "--output", str(run), *(["--resume"] if number else [])]
        pid, log = zygote.start(args, env={"ETK_TEST_KILL_IN_CHECKPOINT": f"{checkpoint}:{point}"})
        assert zygote.wait(pid) == -signal.SIGKILL, log.read_text()
    assert 0 < _latest_step(run) < TOTAL
    zygote.run([*ARGS, "--output", str(run), "--resume"])
    _assert_same_result(run, reference)


def _assert_intact(run: Path) -> None:
    """The artifact loads and matches its digests; an export present is a complete one."""
    from etk_core.artifact import find_artifact, verify
    from etk_core.export.runtime import has_export

    folder = find_artifact(run)  # (finishes a swap a kill cut between its two renames)
    verify(folder)
    if has_export(folder):
        verify(folder, "onnx")
    assert (folder / "model.onnx").exists() == (folder / "onnx.json").exists()


def test_sigkill_at_random_moments_of_export_then_export_again(zygote, reference, tmp_path):
    import numpy as np

    from etk_core.predict import Predictor

    rng = random.Random(1503)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    begin = time.perf_counter()
    zygote.run(["export", str(run)])
    duration = time.perf_counter() - begin
    codes = []
    for _ in range(5):
        pid, log = zygote.start(["export", str(run)])
        time.sleep(rng.uniform(0.05, 0.9) * duration)
        os.kill(pid, signal.SIGKILL)
        codes.append(zygote.wait(pid))
        assert codes[-1] in (-signal.SIGKILL, 0), log.read_text()
        _assert_intact(run)
        assert list((run / "model").glob("tmp*")) == []  # nothing is written inside the artifact
    zygote.run(["export", str(run)])
    _assert_intact(run)
    hidden = [path.name for path in run.iterdir() if path.name.startswith(".") and path.name != LOCK_FILE]
    assert hidden == []  # no temporaries left (the lock file is the run's, see etk_core.run.lock_folder)
    assert codes.count(-signal.SIGKILL) >= 4, codes  # (a loaded machine may let one finish first)
    texts = ["a great book", "dull and far too long", "fine"]
    onnx, torch_ = Predictor(run, backend="onnx"), Predictor(run, backend="torch")
    features = [onnx.app.encode({"text": text}, with_label=False) for text in texts]
    assert np.abs(onnx.outputs(features)["logits"] - torch_.outputs(features)["logits"]).max() < 1e-4
