"""ONNX export: the graph matches PyTorch, predictions through ONNX Runtime equal PyTorch's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from etk_core.testing import run_cli, train_run

TRAIN = ["train", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
         "--data", "dev=synthetic_sentiment:dev", "--set", "train.max_steps=40", "--set", "train.batch_size=16",
         "--set", "train.lr=2e-3", "--set", "train.max_length=64", "--set", "train.eval_every=20"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("export"), TRAIN)


def test_train_exports_automatically_and_checks_itself(run_dir):
    record = json.loads((run_dir / "model" / "onnx.json").read_text())
    assert (run_dir / "model" / "model.onnx").is_file()
    assert record["max_abs_diff"] < 1e-4
    assert record["inputs"][:2] == ["input_ids", "attention_mask"] and record["outputs"] == ["logits"]


def test_onnx_matches_pytorch_on_real_batches(run_dir):
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    records = load_records("synthetic_sentiment:dev", {}, required=("text", "label"))
    torch_predictor = Predictor(run_dir, backend="torch", batch_size=13)
    onnx_predictor = Predictor(run_dir, backend="onnx", batch_size=7)
    features = [torch_predictor.app.encode(r, with_label=False) for r in records]
    a, b = torch_predictor.outputs(features)["logits"], onnx_predictor.outputs(features)["logits"]
    assert a.shape == b.shape == (len(records), 2)
    assert np.abs(a - b).max() < 1e-4


def test_predict_with_onnx_equals_predict_with_pytorch(run_dir, tmp_path):
    outputs = {}
    for backend in ("torch", "onnx"):
        target = tmp_path / f"{backend}.jsonl"
        result = run_cli(["predict", str(run_dir), "--input", "synthetic_sentiment:test", "--output", str(target),
                          "--backend", backend])
        assert result.exit_code == 0, result.output
        outputs[backend] = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(outputs["torch"]) == len(outputs["onnx"]) == 200
    for left, right in zip(outputs["torch"], outputs["onnx"]):
        assert left["prediction"]["label"] == right["prediction"]["label"]
        for label, value in left["prediction"]["probabilities"].items():
            assert value == pytest.approx(right["prediction"]["probabilities"][label], abs=1e-5)


def test_int8_export_agrees(run_dir):
    result = run_cli(["export", str(run_dir), "--quantize", "int8", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (run_dir / "model" / "model.int8.onnx").is_file() and record["int8_sample_agreement"] >= 0.8
    # each layer's feed-forward down-projection (the MatMul after the GELU) stays fp32
    layers = json.loads((run_dir / "model" / "encoder" / "config.json").read_text())["num_hidden_layers"]
    assert record["int8_fp32_matmuls"] == layers
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    records = load_records("synthetic_sentiment:dev", {}, required=("text", "label"))
    fp32 = [p["label"] for p in Predictor(run_dir, backend="onnx").predict(records)]
    int8 = [p["label"] for p in Predictor(run_dir, backend="onnx-int8").predict(records)]
    assert np.mean([x == y for x, y in zip(fp32, int8)]) >= 0.95


def test_failed_check_is_one_line_and_keeps_the_old_graph(run_dir, monkeypatch):
    from etk_core.export import onnx_export

    before = (run_dir / "model" / "model.onnx").read_bytes()
    monkeypatch.setattr(onnx_export, "FP32_TOLERANCE", 0.0)
    result = run_cli(["export", str(run_dir), "--no-optimize"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "differ from PyTorch" in result.stderr
    assert (run_dir / "model" / "model.onnx").read_bytes() == before


def test_no_export_and_missing_graph_error(tmp_path):
    out = tmp_path / "plain"
    result = run_cli([*TRAIN, "--set", "train.max_steps=2", "--no-export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "model" / "model.onnx").exists()
    from etk_core.predict import Predictor

    assert Predictor(out).backend == "torch"
    result = run_cli(["predict", str(out), "--input", "synthetic_sentiment:test", "--output",
                      str(tmp_path / "p.jsonl"), "--backend", "onnx"])
    assert result.exit_code == 2 and "etk export" in result.stderr
