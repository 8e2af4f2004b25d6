"""mrc through `etk train` on generated SQuAD-format data: the span model and hae learn, hae beats the plain
model where only the dialogue history tells the answer, the ONNX export and `etk predict` match PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from etk_apps.mrc.scores import squad_scores
from etk_apps.mrc.toydata import item_dialogues, typed_squad

from etk_core.testing import metrics_log, needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

WINDOWS = ["--set", "train.max_length=48", "--set", "app.max_question_len=8", "--set", "app.doc_stride=16"]


@pytest.fixture(autouse=True)
def _restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mrc")
    files = {"train": typed_squad(200, seed=1, filler=5, asked=("colour",)),
             "dev": typed_squad(40, seed=2, filler=5, asked=("colour",)),
             "dialogue_train": item_dialogues(600, seed=1), "dialogue_dev": item_dialogues(60, seed=2)}
    paths = {"folder": folder}
    for name, document in files.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(document, indent=1), encoding="utf-8")
    return paths


def train(data: dict[str, Path], output: Path, train: str, dev: str, *sets: str) -> list[dict[str, Any]]:
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    result = run_cli(["train", "--app", "mrc", "--model", "bert-tiny", "--data", f"train={data[train]}",
                      "--data", f"dev={data[dev]}", "--set", "train.batch_size=16", "--set", "train.lr=1e-3",
                      "--set", "train.threads=1", *sets, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return metrics_log(output)


def predict(run: Path, source: Path, output: Path, backend: str) -> list[dict[str, Any]]:
    result = run_cli(["predict", str(run), "--input", str(source), "--output", str(output), "--backend", backend])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def first_item_baseline(path: Path) -> float:
    """F1 of answering every question with the passage's first listed item ("we saw X")."""
    golds, guesses = [], []
    for paragraph in json.loads(path.read_text())["data"][0]["paragraphs"]:
        first = paragraph["context"].split("we saw ", 1)[1].split()[0]
        for qa in paragraph["qas"]:
            golds.append([answer["text"] for answer in qa["answers"]])
            guesses.append(first)
    return squad_scores(guesses, golds)["f1"]


def assert_same_predictions(run: Path, source: Path, folder: Path) -> list[dict[str, Any]]:
    """`etk predict` on PyTorch and on ONNX Runtime: same spans, scores within 1e-4; answers are context text."""
    on_torch = predict(run, source, folder / "torch.jsonl", "torch")
    on_onnx = predict(run, source, folder / "onnx.jsonl", "onnx")
    assert len(on_torch) == len(on_onnx) > 0
    for torch_row, onnx_row in zip(on_torch, on_onnx):
        a, b = torch_row["prediction"], onnx_row["prediction"]
        assert set(a) == {"answer", "start", "end", "score"}
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        assert abs(a["score"] - b["score"]) <= 1e-4 and 0.0 <= a["score"] <= 1.0
        assert torch_row["context"][a["start"]:a["end"]] == a["answer"]
    return on_torch


@pytest.fixture(scope="module")
def plain_run(data) -> tuple[Path, list[dict[str, Any]]]:
    output = data["folder"] / "plain"
    history = train(data, output, "train", "dev", *WINDOWS, "--set", "train.max_steps=40",
                    "--set", "train.eval_every=20")
    return output, history


def test_plain_model_learns_spans_over_windows(data, plain_run):
    from etk_apps.mrc import Mrc

    from etk_core.data.load import load_records
    from etk_core.zoo import load_backbone

    records = load_records(str(data["dev"]), {}, required=("text", "text_pair", "answers"))
    app = Mrc({"max_question_len": 8, "doc_stride": 16}, load_backbone({"name": "bert-tiny"})[1], 48)
    assert len(app.encode_all(records)) > 1.2 * len(records)  # passages are longer than a window
    _, history = plain_run
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    baseline = first_item_baseline(data["dev"])
    assert 0.1 < baseline < 0.4
    best = max(line["f1"] for line in history)
    assert best > baseline + 0.4 and best >= 0.8
    assert set(history[-1]) >= {"exact_match", "f1"}


def test_plain_export_and_predict_match_pytorch(data, plain_run, tmp_path):
    from etk_core.predict import Predictor

    run, _ = plain_run
    record = json.loads((run / "model" / "onnx.json").read_text())
    assert record["max_abs_diff"] <= 1e-4 and record["outputs"] == ["start_logits", "end_logits"]
    assert "passage_mask" in record["inputs"] and "history_mask" not in record["inputs"]
    torch_predictor, onnx_predictor = Predictor(run, backend="torch"), Predictor(run, backend="onnx")
    records = [{"text": "what is the colour ?", "text_pair": text, "_where": f"input {i}"}
               for i, text in enumerate(["we saw red . we saw paris .", "the farmer walked along the road . " * 9
                                         + "we saw seven . we saw blue ."])]
    features = torch_predictor.app.encode_all(records, with_label=False)
    assert len(features) > len(records)
    expected, got = torch_predictor.outputs(features), onnx_predictor.outputs(features)
    for name in ("start_logits", "end_logits"):
        assert max(float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())
                   for a, b in zip(expected[name], got[name])) <= 1e-4
    assert torch_predictor.predict(records)[1]["answer"] == onnx_predictor.predict(records)[1]["answer"]
    rows = assert_same_predictions(run, data["dev"], tmp_path)
    gold = [row["answers"][0]["text"] for row in rows]
    assert sum(row["prediction"]["answer"] == text for row, text in zip(rows, gold)) >= 0.8 * len(rows)


@pytest.fixture(scope="module")
def dialogue_runs(data) -> dict[str, list[dict[str, Any]]]:
    budget = ["--set", "train.max_length=32", "--set", "train.max_steps=200", "--set", "train.eval_every=100"]
    return {"plm": train(data, data["folder"] / "plm", "dialogue_train", "dialogue_dev", *budget,
                         "--set", "export=false"),
            "hae": train(data, data["folder"] / "hae", "dialogue_train", "dialogue_dev", *budget,
                         "--set", "app.model=hae")}


def test_hae_uses_the_history_the_plain_model_cannot(data, dialogue_runs):
    hae, plain = dialogue_runs["hae"], dialogue_runs["plm"]
    assert hae[-1]["train_loss"] < 0.75 * hae[0]["train_loss"]
    best_hae, best_plain = max(line["f1"] for line in hae), max(line["f1"] for line in plain)
    assert best_hae > first_item_baseline(data["dialogue_dev"]) + 0.3
    assert best_hae > best_plain + 0.15, (best_hae, best_plain)


def test_hae_export_and_predict_match_pytorch(data, dialogue_runs, tmp_path):
    run = data["folder"] / "hae"
    record = json.loads((run / "model" / "onnx.json").read_text())
    assert record["max_abs_diff"] <= 1e-4 and "history_mask" in record["inputs"]
    rows = assert_same_predictions(run, data["dialogue_dev"], tmp_path)
    follow_ups = [row for row in rows if row["question"] == "what else ?"]
    assert follow_ups and all(len(row["history"]) == 1 for row in follow_ups)
