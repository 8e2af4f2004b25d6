"""The training loop's knobs: evaluation cadence, early stopping, accumulation, checkpoints."""

from __future__ import annotations

import json

import pytest

from etk_core.config import resolve
from etk_core.run import prepare, start


def _run(tmp_path, *sets):
    config = resolve(flags={"model.name": "bert-tiny", "output": str(tmp_path / "run"),
                            "data.sources": {"train": "synthetic_sentiment:train", "dev": "synthetic_sentiment:dev"}},
                     sets=["train.batch_size=16", "train.max_length=48", "data.max_rows=160", "train.threads=1",
                           *sets])
    run = prepare(config)
    start(run)
    return run, run.fit(run.build_model())


def _log(run):
    """The evaluation rows of the run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["kind"] == "eval"]


def test_eval_every_n_steps_and_max_steps(tmp_path):
    run, result = _run(tmp_path, "train.eval_every=4", "train.max_steps=10")
    assert result.steps == 10
    assert [r["step"] for r in _log(run)] == [4, 8, 10]
    assert (run.dir / "checkpoints" / "step-0000010").is_dir()
    assert len(list((run.dir / "checkpoints").glob("step-*"))) == 1  # only the last is kept


def test_early_stopping_stops(tmp_path):
    # lr 0 never improves: stop after the patience is used up
    run, result = _run(tmp_path, "train.lr=0", "train.eval_every=2", "train.early_stopping=2", "train.epochs=5")
    assert result.steps == 6
    assert len(_log(run)) == 3


def test_grad_accum_counts_optimizer_steps(tmp_path):
    run, result = _run(tmp_path, "train.grad_accum=2", "train.epochs=1")
    assert result.steps == 5  # 160 rows / 16 = 10 batches / 2


def test_best_artifact_tracks_the_best_dev_metric(tmp_path):
    run, result = _run(tmp_path, "train.eval_every=3", "train.epochs=2", "train.lr=3e-3")
    best = max(r["accuracy"] for r in _log(run))
    meta = json.loads((run.dir / "model" / "etk.json").read_text())
    assert meta["metrics"]["accuracy"] == pytest.approx(best)
    assert result.best_metrics["accuracy"] == pytest.approx(best)


def test_no_dev_saves_the_last_model(tmp_path):
    config = resolve(flags={"model.name": "bert-tiny", "output": str(tmp_path / "run"),
                            "data.sources": {"train": "synthetic_sentiment:train"}},
                     sets=["train.max_steps=3", "train.batch_size=8", "data.max_rows=40"])
    run = prepare(config)
    start(run)
    result = run.fit(run.build_model())
    assert result.steps == 3 and (run.dir / "model" / "etk.json").is_file()


def test_per_domain_dev_metrics_where_dev_has_domains(tmp_path):
    config = resolve(flags={"model.name": "bert-tiny", "output": str(tmp_path / "run"),
                            "data.sources": {"train": "synthetic_domains:train", "dev": "synthetic_domains:dev"}},
                     sets=["train.max_steps=4", "train.batch_size=16", "train.max_length=32", "train.threads=1"])
    run = prepare(config)
    start(run)
    from etk_core.api import run_algorithm

    run_algorithm(run)
    row = _log(run)[-1]
    domains = sorted({record["domain"] for record in run.records["dev"]})
    assert len(domains) == 4 and all(f"{d}/accuracy" in row for d in domains), row
    sizes = {d: sum(r["domain"] == d for r in run.records["dev"]) for d in domains}
    pooled = sum(row[f"{d}/accuracy"] * sizes[d] for d in domains) / sum(sizes.values())
    assert pooled == pytest.approx(row["accuracy"])
