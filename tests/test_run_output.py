"""What a user sees and keeps: plain progress lines when stderr is a log file, final figures that outlive the
terminal, and tables that fit 80 columns without cutting a name."""

from __future__ import annotations

import io
import json

import pytest

from etk_core.testing import metrics_log, run_cli

RUN = ["train", "--app", "text_classify", "--algo", "finetune", "--model", "bert-tiny",
       "--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev",
       "--set", "train.max_steps=12", "--set", "train.eval_every=6", "--set", "train.max_length=32"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    result = run_cli([*RUN, "--output", str(out)], env={"ETK_PROGRESS_EVERY": "0", "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return out, result


def test_plain_progress_lines_when_stderr_is_not_a_terminal(run):
    _, result = run
    lines = result.stderr.splitlines()
    assert lines[0] == "[train] 12 steps"
    steps = [line for line in lines if line.startswith("[train] step ")]
    assert len(steps) == 12 and steps[-1].startswith("[train] step 12/12 (100%) loss ")
    assert all(" samples/s eta " in line for line in steps)
    evals = [line for line in lines if line.startswith("[train] dev at step ")]
    assert [line.split(":")[0] for line in evals] == ["[train] dev at step 6", "[train] dev at step 12"]
    assert "accuracy 0." in evals[0] and lines[-1].startswith("[train] done in ")


def test_plain_progress_is_rate_limited():
    from etk_core.training.reporter import PlainReporter

    stream = io.StringIO()
    reporter = PlainReporter(stream, every=3600)
    reporter.start("train", 100, 40)
    for step in range(41, 101):
        reporter.update(step, 0.5, 10.0)
    reporter.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[train] 100 steps, resuming after step 40"
    assert [line.split(" loss")[0] for line in lines[1:-1]] == ["[train] step 100/100 (100%)"]  # only the last


def test_final_figures_close_metrics_log_and_join_the_artifact_record(run):
    out, _ = run
    summary = json.loads((out / "summary.json").read_text())
    final = metrics_log(out, "final")
    assert len(final) == 1 and metrics_log(out, None)[-1]["kind"] == "final"
    assert {key: final[0][key] for key in summary} == summary and final[0]["step"] == 12
    assert json.loads((out / "model" / "etk.json").read_text())["final"] == summary
    assert "dev_accuracy" in summary


def test_resumed_finished_run_keeps_one_final_row(tmp_path):
    copy = tmp_path / "again"
    for extra in ([], ["--resume"]):
        result = run_cli([*RUN, "--output", str(copy), "--no-export", *extra])
        assert result.exit_code == 0, result.output
    assert len(metrics_log(copy, "final")) == 1
    # the artifact still loads and verifies after its record gained the figures
    assert run_cli(["evaluate", str(copy), "--data", "dev=synthetic_sentiment:dev"]).exit_code == 0


def test_run_summary_fits_80_columns_with_whole_paths(run):
    out, result = run
    lines = result.stdout.splitlines()
    assert f"run folder: {out}" in lines and f"model artifact: {out / 'model'}" in lines
    table = [line for line in lines if not line.startswith(("run folder: ", "model artifact: "))]
    assert table and all(len(line) <= 80 for line in table), result.stdout


@pytest.mark.parametrize("args", [["plugins"], ["list", "datasets"], ["list", "models"], ["list", "algos"]])
def test_listings_fit_80_columns_and_never_cut_a_name(args):
    result = run_cli(args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    assert "…" not in result.stdout
    rows = json.loads(run_cli([*args, "--json"]).stdout)
    names = [row["name"] for row in rows] + [name for row in rows for names in row.get("registers", {}).values()
                                             for name in names]
    assert all(name in result.stdout for name in names), [name for name in names if name not in result.stdout]
