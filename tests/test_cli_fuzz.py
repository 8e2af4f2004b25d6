"""The CLI as a hostile user types it: every wrong input is one line (`error: ...`, no traceback) and exit 2
(3 for a damaged file), and nothing on disk changes: no run folder appears, an existing run and its model
artifact stay byte for byte as they were."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from etk_core.testing import run_cli

GOOD = "text\tlabel\ngood film\tpos\nbad film\tneg\nnice book\tpos\nawful book\tneg\n"
TINY = ["--model", "bert-tiny", "--set", "train.max_length=32", "--set", "train.batch_size=4"]
#: A training command that would start a new run in {new} (which must not appear).
TRAIN = ["train", *TINY, "--data", "train={good}", "--data", "dev={good}", "--output", "{new}"]


def _set(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


# name -> (arguments with {placeholders}, exit code, text the one error line must hold)
CASES: dict[str, tuple[list[str], int, str]] = {
    # ranges of numeric config keys, refused where they are declared
    "batch_size -4": ([*TRAIN, *_set("train.batch_size=-4")], 2, "'train.batch_size': must be >= 1, got -4"),
    "epochs 0": ([*TRAIN, *_set("train.epochs=0")], 2, "'train.epochs': must be > 0"),
    "epochs -1": ([*TRAIN, *_set("train.epochs=-1")], 2, "'train.epochs': must be > 0"),
    "lr -1": ([*TRAIN, *_set("train.lr=-1")], 2, "'train.lr': must be >= 0, got -1"),
    "lr nan": ([*TRAIN, *_set("train.lr=nan")], 2, "'train.lr': must be a finite number"),
    "lr inf": ([*TRAIN, *_set("train.lr=1e999")], 2, "'train.lr': must be a finite number"),
    "grad_accum 0": ([*TRAIN, *_set("train.grad_accum=0")], 2, "'train.grad_accum': must be >= 1"),
    "eval_batch_size -1": ([*TRAIN, *_set("train.eval_batch_size=-1")], 2, "'train.eval_batch_size': must be >= 1"),
    "max_length 0": ([*TRAIN, *_set("train.max_length=0")], 2, "'train.max_length': must be >= 1"),
    "max_length past the positions": ([*TRAIN, *_set("train.max_length=1000")], 2, "reads (512 positions)"),
    "max_steps 0": ([*TRAIN, *_set("train.max_steps=0")], 2, "'train.max_steps': must be >= 1"),
    "warmup_ratio 1.5": ([*TRAIN, *_set("train.warmup_ratio=1.5")], 2, "must be >= 0 and <= 1, got 1.5"),
    "weight_decay -0.1": ([*TRAIN, *_set("train.weight_decay=-0.1")], 2, "'train.weight_decay': must be >= 0"),
    "max_grad_norm 0": ([*TRAIN, *_set("train.max_grad_norm=0")], 2, "'train.max_grad_norm': must be > 0"),
    "eval_every -1": ([*TRAIN, *_set("train.eval_every=-1")], 2, "'train.eval_every': must be >= 0"),
    "threads 0": ([*TRAIN, *_set("train.threads=0")], 2, "'train.threads': must be >= 1"),
    "model.dropout 1": ([*TRAIN, *_set("model.dropout=1")], 2, "'model.dropout': must be >= 0 and < 1"),
    "app.dropout -0.5": ([*TRAIN, *_set("app.dropout=-0.5")], 2, "'app.dropout': must be >= 0 and < 1"),
    "data.max_rows 0": ([*TRAIN, *_set("data.max_rows=0")], 2, "'data.max_rows': must be >= 1"),
    "seed -1": ([*TRAIN, *_set("seed=-1")], 2, "'seed': must be >= 0"),
    "strategy nproc 0": ([*TRAIN, *_set("strategy.name=ddp", "strategy.nproc=0")], 2, "'strategy.nproc'"),
    # types, keys and syntax
    "batch_size abc": ([*TRAIN, *_set("train.batch_size=abc")], 2, "expected int, got 'abc'"),
    "bool garbage": ([*TRAIN, *_set("train.bucket=maybe")], 2, "'train.bucket': expected bool"),
    "unknown key": ([*TRAIN, *_set("train.epoch=3")], 2, "did you mean 'train.epochs'"),
    "unknown section": ([*TRAIN, *_set("optim.lr=3")], 2, "unknown config key 'optim'"),
    "set without =": ([*TRAIN, "--set", "train.epochs"], 2, "expected KEY=VALUE"),
    "set without key": ([*TRAIN, "--set", "=3"], 2, "expected KEY=VALUE"),
    "section as value": ([*TRAIN, *_set("train=3")], 2, "is a section"),
    "key under a value": ([*TRAIN, *_set("seed.x=1")], 2, "'seed': expected int"),
    "bad choice": ([*TRAIN, *_set("train.precision=fp8")], 2, "'fp8' is not one of"),
    "bad on_error": ([*TRAIN, *_set("data.on_error=ignore")], 2, "'ignore' is not one of"),
    # components
    "unknown app": ([*TRAIN, "--app", "nope"], 2, "nope"),
    "unknown algo": ([*TRAIN, "--algo", "nope"], 2, "nope"),
    "unknown model": (["train", "--model", "nope-model", "--data", "train={good}", "--output", "{new}"], 2,
                      "unknown model 'nope-model'"),
    "unknown strategy": ([*TRAIN, "--strategy", "nope"], 2, "nope"),
    # data
    "duplicate role": ([*TRAIN, "--data", "train={other}"], 2, "--data train= is given twice"),
    "empty source": ([*TRAIN, "--data", "test="], 2, "no source after '='"),
    "unknown role": ([*TRAIN, "--data", "extra={good}"], 2, "takes no data role 'extra'"),
    "missing role": (["train", *TINY, "--data", "dev={good}", "--output", "{new}"], 2, "needs --data train=PATH"),
    "missing data file": (["train", *TINY, "--data", "train={missing}", "--output", "{new}"], 2, "nope.tsv"),
    "data is a folder": (["train", *TINY, "--data", "train={data}", "--output", "{new}"], 2, "is a folder"),
    "data not utf-8": (["train", *TINY, "--data", "train={latin1}", "--output", "{new}"], 2, "latin1.tsv:2"),
    # --config
    "config missing": ([*TRAIN, "--config", "{missing_yaml}"], 2, "does not exist"),
    "config garbage": ([*TRAIN, "--config", "{garbage_yaml}"], 2, "garbage.yaml:2: cannot parse config"),
    "config a list": ([*TRAIN, "--config", "{list_yaml}"], 2, "must hold a mapping"),
    "config unknown key": ([*TRAIN, "--config", "{typo_yaml}"], 2, "did you mean 'train.epochs'"),
    "config bad range": ([*TRAIN, "--config", "{range_yaml}"], 2, "'train.warmup_ratio': must be >= 0 and <= 1, got 2"),
    "config is a folder": ([*TRAIN, "--config", "{data}"], 2, "--config"),
    # --output and --resume
    "output is a file": (["train", *TINY, "--data", "train={good}", "--output", "{good}"], 2, "--output"),
    "output under a file": (["train", *TINY, "--data", "train={good}", "--set", "output={good}/run"], 2,
                            "is a file, so no folder can be made there"),
    "output holds a run": (["train", *TINY, "--data", "train={good}", "--output", "{run}"], 2,
                           "already exists and holds a run"),
    "output holds other files": (["train", *TINY, "--data", "train={good}", "--output", "{data}"], 2,
                                 "holds files that are not a run's"),
    "resume without output": (["train", *TINY, "--data", "train={good}", "--resume"], 2, "--resume needs --output"),
    "resume without a run": ([*TRAIN, "--resume"], 2, "nothing to resume"),
    "resume with other args": (["train", *TINY, *_set("train.lr=1e-2"), "--data", "train={good}", "--data",
                                "dev={good}", "--output", "{run}", "--resume"], 2, "different config"),
    "resume garbage config.yaml": ([*TRAIN[:-1], "{damaged}", "--resume"], 3, "config.yaml is damaged"),
    # command-line options of train
    "nproc 0": ([*TRAIN, "--nproc", "0"], 2, "'--nproc': 0 is not in the range"),
    "nnodes 0": ([*TRAIN, "--nnodes", "0"], 2, "'--nnodes': 0 is not in the range"),
    "master port 70000": ([*TRAIN, "--master-port", "70000"], 2, "'--master-port'"),
    "unknown option": ([*TRAIN, "--epochs", "3"], 2, "No such option '--epochs'"),
    "unknown command": (["fit", "--data", "train={good}"], 2, "No such command 'fit'"),
    # evaluate, predict, export
    "evaluate batch 0": (["evaluate", "{run}", "--data", "dev={good}", "--batch-size", "0"], 2, "'--batch-size'"),
    "evaluate batch -1": (["evaluate", "{run}", "--data", "dev={good}", "--batch-size", "-1"], 2, "'--batch-size'"),
    "evaluate batch abc": (["evaluate", "{run}", "--data", "dev={good}", "--batch-size", "abc"], 2, "'--batch-size'"),
    "evaluate no artifact": (["evaluate", "{new}", "--data", "dev={good}"], 2, "does not exist"),
    "evaluate train key": (["evaluate", "{run}", "--data", "dev={good}", "--set", "train.lr=1"], 2,
                           "only data.* keys"),
    "evaluate duplicate role": (["evaluate", "{run}", "--data", "dev={good}", "--data", "dev={other}"], 2,
                                "given twice"),
    "evaluate bad backend": (["evaluate", "{run}", "--data", "dev={good}", "--backend", "tpu"], 2, "'--backend'"),
    "evaluate missing data": (["evaluate", "{run}", "--data", "dev={missing}"], 2, "nope.tsv"),
    "predict batch 0": (["predict", "{run}", "--input", "{good}", "--output", "{out}", "--batch-size", "0"], 2,
                        "'--batch-size'"),
    "predict batch -1": (["predict", "{run}", "--input", "{good}", "--output", "{out}", "--batch-size", "-1"], 2,
                         "'--batch-size'"),
    "predict bad format": (["predict", "{run}", "--input", "{good}", "--output", "{out}", "--format", "xml"], 2,
                           "'--format'"),
    "predict no input": (["predict", "{run}", "--output", "{out}"], 2, "'--input'"),
    "predict output folder missing": (["predict", "{run}", "--input", "{good}", "--output", "{new}/p.jsonl"], 2,
                                      "does not exist"),
    "predict output is a folder": (["predict", "{run}", "--input", "{good}", "--output", "{data}"], 2,
                                   "'--output'"),
    "predict bad data key": (["predict", "{run}", "--input", "{good}", "--output", "{out}", "--set",
                              "data.max_rows=-3"], 2, "'data.max_rows': must be >= 1"),
    "export unknown format": (["export", "{run}", "--format", "tflite"], 2, "tflite"),
    "export bad quantize": (["export", "{run}", "--quantize", "int4"], 2, "'--quantize'"),
    "export no artifact": (["export", "{new}"], 2, "does not exist"),
}


def _tree_digest(root: Path) -> dict[str, str]:
    """Every path under `root` with a digest of its bytes (folders: '-'), for before/after comparisons."""
    tree = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        tree[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"
    return tree


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with data files, broken configs, a damaged run and a finished tiny run (`run/`)."""
    from etk_core.plugins import reset_plugin_manager

    root = tmp_path_factory.mktemp("fuzz")
    data = root / "data"
    data.mkdir()
    (data / "good.tsv").write_text(GOOD)
    (data / "other.tsv").write_text(GOOD)
    (data / "latin1.tsv").write_bytes(b"text\tlabel\ncaf\xe9\tpos\n")
    (data / "garbage.yaml").write_text("train: {epochs: [\n")
    (data / "list.yaml").write_text("- train\n- epochs\n")
    (data / "typo.yaml").write_text("train:\n  epoch: 3\n")
    (data / "range.yaml").write_text("train:\n  warmup_ratio: 2\n")
    damaged = root / "damaged"
    damaged.mkdir()
    (damaged / "config.yaml").write_bytes(b"app: {name: [\x00\n")
    reset_plugin_manager()
    result = run_cli(["train", *TINY, "--data", f"train={data / 'good.tsv'}", "--data", f"dev={data / 'good.tsv'}",
                      *_set("train.max_steps=2"), "--no-export", "--output", str(root / "run")])
    assert result.exit_code == 0, result.output
    assert (root / "run" / "model" / "etk.json").is_file()
    return root


def _fill(args: list[str], root: Path) -> list[str]:
    data = root / "data"
    values = {"good": data / "good.tsv", "other": data / "other.tsv", "latin1": data / "latin1.tsv",
              "missing": data / "nope.tsv", "missing_yaml": data / "nope.yaml", "garbage_yaml": data / "garbage.yaml",
              "list_yaml": data / "list.yaml", "typo_yaml": data / "typo.yaml", "range_yaml": data / "range.yaml",
              "data": data, "run": root / "run", "new": root / "new-run", "out": root / "predictions.jsonl",
              "damaged": root / "damaged"}
    return [arg.format(**{key: str(value) for key, value in values.items()}) for arg in args]


def test_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_input_is_one_line_and_changes_nothing(workspace, case, monkeypatch):
    args, code, fragment = CASES[case]
    monkeypatch.chdir(workspace)  # a default runs/ folder would show in the digest
    before = _tree_digest(workspace)
    result = run_cli(_fill(args, workspace))
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    assert _tree_digest(workspace) == before, "a wrong input changed files on disk"


def _start_args(out: Path, good: Path, *extra: str) -> list[str]:
    return ["train", *TINY, "--data", f"train={good}", "--data", f"dev={good}", "--no-export", "--output", str(out),
            *extra]


def test_a_run_that_failed_before_its_first_checkpoint_can_be_started_again(workspace, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("stale: true\n")  # what a run that died early leaves
    (out / "metrics.jsonl").write_text('{"kind": "stale", "step": 1}\n')
    (out / "checkpoints" / ".step-0000001.tmp").mkdir(parents=True)
    result = run_cli(_start_args(out, workspace / "data" / "good.tsv", *_set("train.max_steps=1")))
    assert result.exit_code == 0, result.output
    assert "stale" not in (out / "config.yaml").read_text()
    assert "stale" not in (out / "metrics.jsonl").read_text()
    assert not list((out / "checkpoints").glob(".*"))
    assert (out / "model" / "etk.json").is_file()


def test_a_folder_with_only_a_partial_artifact_is_started_again(workspace, tmp_path):
    from etk_core.run import output_state

    out = tmp_path / "run"
    (out / ".model.tmp").mkdir(parents=True)
    (out / "config.yaml").write_text("app: {name: text_classify}\n")
    assert output_state(out)[0] == "early"
    (out / ".model.old").mkdir()  # a crash between the two renames of an artifact swap: a real artifact
    assert output_state(out) == ("run", ".model.old")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_output_in_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run_cli(["train", "--data", "train=x.tsv", "--output", str(locked / "run")])
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2 and "no permission to write" in result.stderr, result.output
