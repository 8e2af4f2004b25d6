"""Every feature-based algorithm trains through the CLI with falling losses, writes the target model and the
source models, exports to ONNX, and `etk predict` gives the same labels on PyTorch and ONNX Runtime; the
refusals are one line before a run folder exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etk_core.testing import metrics_log, needs_packaged_minilm, run_cli, train_run

pytestmark = needs_packaged_minilm()

DATA = ["--data", "source=synthetic_sentiment:test", "--data", "target=synthetic_sentiment:train",
        "--data", "dev=synthetic_sentiment:dev", "--data", "test=synthetic_sentiment:dev"]
SETS = ["train.max_steps=60", "train.batch_size=16", "train.max_length=32", "train.eval_every=20", "train.lr=3e-3",
        "train.threads=1", "data.max_rows=160", "train.log_every=2"]


def train(tmp_path: Path, algo: str, *extra: str, app: str = "text_classify", data: list[str] = DATA) -> Path:
    sets = [item for value in [*SETS, *extra] for item in ("--set", value)]
    return train_run(tmp_path, ["train", "--app", app, "--algo", algo, "--model", "bert-tiny", *data, *sets])


def _first_and_last(rows: list[dict], key: str) -> tuple[float, float]:
    values = [row[key] for row in rows if key in row]
    return sum(values[:3]) / 3, sum(values[-3:]) / 3


@pytest.mark.parametrize("algo, extra", [
    ("fs", []), ("sp", []), ("sp_adv", []), ("drss", []), ("drss_adv", ["algo.private=top", "algo.private_layers=1"]),
    ("src_then_tgt", []),
])
def test_trains_exports_and_predicts_alike_on_torch_and_onnx(tmp_path, algo, extra):
    run = train(tmp_path, algo, *extra)
    rows = metrics_log(run, "train")
    for key in ("loss_target",) if algo != "src_then_tgt" else ("loss",):
        first, last = _first_and_last(rows, key)
        assert last < 0.8 * first, (key, first, last)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["dev_accuracy"] > 0.75, summary  # two balanced classes: chance is 0.5
    assert summary["test_accuracy"] == pytest.approx(summary["dev_accuracy"])  # the rebuilt artifact, same data
    assert (run / "model" / "model.onnx").is_file()
    assert (run / "domains" / "source" / "etk.json").is_file()
    outputs = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.jsonl"
        result = run_cli(["predict", str(run), "--input", "synthetic_sentiment:dev", "--output", str(out),
                          "--backend", backend, "--set", "data.max_rows=64"])
        assert result.exit_code == 0, result.output
        outputs[backend] = [json.loads(line)["prediction"]["label"] for line in out.read_text().splitlines()]
    assert outputs["torch"] == outputs["onnx"] and len(outputs["torch"]) == 64
    result = run_cli(["evaluate", str(run), "--domain", "source", "--data", "test=synthetic_sentiment:test",
                      "--set", "data.max_rows=64", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] > 0.6


def test_drss_writes_its_domain_relationship(tmp_path):
    run = train(tmp_path, "drss", "train.epochs=2", "train.max_steps=null", "data.max_rows=96")
    relation = json.loads((run / "domain_relationship.json").read_text(encoding="utf-8"))
    assert relation["rows"] == ["W_s", "W_c^s", "W_t", "W_c^t"] and relation["updates"] == 2
    import numpy as np

    omega = np.array(relation["omega"])
    assert np.trace(omega) == pytest.approx(1.0, abs=1e-5) and np.linalg.eigvalsh(omega).min() > -1e-6
    assert (run / "domain_relationship.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert "relation_W_c^s~W_c^t" in summary


def test_sp_adv_over_several_source_domains_with_a_classic_model(tmp_path):
    data = ["--data", "source=synthetic_domains:train", "--data", "target=synthetic_sentiment:train",
            "--data", "dev=synthetic_sentiment:dev"]
    run = train(tmp_path, "sp_adv", "app.model=textcnn", data=data)
    assert sorted(path.name for path in (run / "domains").iterdir()) == ["books", "dvd", "electronics", "kitchen"]
    accuracy = [row["disc_accuracy"] for row in metrics_log(run, "train")]
    assert accuracy and all(0 <= value <= 1 for value in accuracy)
    assert (run / "model" / "model.onnx").is_file()


def test_text_match_pairs(tmp_path):
    data = ["--data", "source=synthetic_pairs:test", "--data", "target=synthetic_pairs:train",
            "--data", "dev=synthetic_pairs:dev"]
    run = train(tmp_path, "sp", app="text_match", data=data)
    assert (run / "model" / "model.onnx").is_file()


@pytest.mark.parametrize("algo, extra, data, needle", [
    ("drss", [], ["--data", "source=synthetic_domains:train", "--data", "target=synthetic_sentiment:train"],
     "relates one source domain"),
    ("sp", ["app.model=textcnn", "algo.private=top"], DATA, "algo.private=full"),
    ("sp", ["algo.private=half"], DATA, "algo.private='half'"),
    ("sp_adv", ["algo.private_layers=9", "algo.private=top"], DATA, "algo.private_layers=9"),
])
def test_refusals_are_one_line_before_a_run_folder_exists(tmp_path, algo, extra, data, needle):
    out = tmp_path / "refused"
    sets = [item for value in [*SETS, *extra] for item in ("--set", value)]
    result = run_cli(["train", "--app", "text_classify", "--algo", algo, "--model", "bert-tiny", *data, *sets,
                      "--output", str(out)])
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())
