"""End to end through the CLI: train -> artifact -> evaluate -> predict, on a tiny preset and synthetic data."""

from __future__ import annotations

import json

import pytest

from etk_core.testing import metrics_log, run_cli

TINY = ["--app", "text_classify", "--algo", "finetune", "--model", "bert-tiny",
        "--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev",
        "--set", "train.epochs=3", "--set", "train.batch_size=16", "--set", "train.lr=2e-3",
        "--set", "train.max_length=64", "--set", "train.warmup_ratio=0.0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli(["train", *TINY, "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_run_folder_layout(trained):
    out, metrics = trained
    assert (out / "config.yaml").is_file()
    assert (out / "model" / "etk.json").is_file() and (out / "model" / "model.safetensors").is_file()
    assert (out / "checkpoints" / "LATEST").is_file()
    lines = metrics_log(out)
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert metrics["dev_accuracy"] > 0.75, metrics


def test_evaluate_reproduces_reported_dev_metric(trained):
    out, metrics = trained
    result = run_cli(["evaluate", str(out), "--data", "dev=synthetic_sentiment:dev", "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)
    assert evaluated["accuracy"] == pytest.approx(metrics["dev_accuracy"], abs=1e-9)
    assert evaluated["macro_f1"] == pytest.approx(metrics["dev_macro_f1"], abs=1e-9)


def test_predict_one_row_per_input(trained, tmp_path):
    out, _ = trained
    source = tmp_path / "in.tsv"
    source.write_text("id\ttext\n1\tgreat wonderful book\n2\tawful boring film\n3\tit was\n")
    target = tmp_path / "out.jsonl"
    result = run_cli(["predict", str(out), "--input", str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    for row in rows:
        probabilities = row["prediction"]["probabilities"]
        assert row["prediction"]["label"] == max(probabilities, key=probabilities.get)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    tsv = tmp_path / "out.tsv"
    result = run_cli(["predict", str(out), "--input", str(source), "--output", str(tsv)])
    assert result.exit_code == 0, result.output
    header, *body = tsv.read_text().splitlines()
    assert header.split("\t")[:2] == ["id", "text"] and "pred_label" in header and len(body) == 3


def test_python_api_matches_cli(trained):
    import etk_core

    out, _ = trained
    predictor = etk_core.load(out)
    predictions = predictor.predict(["great wonderful book", "awful boring film"])
    assert {p["label"] for p in predictions} <= set(predictor.app.labels)


def test_existing_run_folder_is_refused(trained):
    out, _ = trained
    result = run_cli(["train", *TINY, "--output", str(out)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr and result.stderr.count("\n") == 1
    assert (out / "model" / "etk.json").is_file()


def test_resume_of_a_finished_run_changes_nothing(trained):
    out, metrics = trained
    log = (out / "metrics.jsonl").read_text()
    result = run_cli(["train", *TINY, "--output", str(out), "--resume", "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout.strip().splitlines()[-1])
    assert again["dev_accuracy"] == metrics["dev_accuracy"]
    assert (out / "metrics.jsonl").read_text() == log


def test_resume_with_other_arguments_is_refused(trained):
    out, _ = trained
    result = run_cli(["train", *TINY, "--set", "train.lr=1e-4", "--output", str(out), "--resume"])
    assert result.exit_code == 2 and "train.lr" in result.stderr


def test_artifact_swap_interrupted_by_a_crash_is_recovered(trained, tmp_path):
    import shutil

    from etk_core.artifact import find_artifact

    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "model").rename(copy / ".model.old")  # killed between the two renames of save_artifact
    assert find_artifact(copy) == copy / "model"
    assert (copy / "model" / "etk.json").is_file()
