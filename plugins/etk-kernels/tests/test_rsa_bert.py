"""RSA-BERT: k=1 is the dense model; `--model rsa-bert` trains, exports (fixed length) and predicts the same
on PyTorch and ONNX Runtime; the artifact rebuilds the RSA encoder."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from etk_core.testing import metrics_log, needs_packaged_minilm, run_cli, train_run

pytestmark = needs_packaged_minilm()

TRAIN = ["train", "--app", "text_classify", "--model", "rsa-bert", "--set", "model.base=bert-tiny",
         "--set", "model.rsa_k=2", "--set", "model.rsa_block=16", "--data", "train=synthetic_sentiment:train",
         "--data", "dev=synthetic_sentiment:dev", "--set", "train.max_steps=60", "--set", "train.batch_size=16",
         "--set", "train.lr=2e-3", "--set", "train.max_length=64", "--set", "train.eval_every=30",
         "--set", "train.threads=1"]


def test_k1_equals_the_dense_encoder():
    from etk_kernels.rsa_bert import enable_rsa

    from etk_core.zoo import load_backbone

    torch.manual_seed(0)
    dense, _ = load_backbone({"name": "bert-tiny"})
    dense.eval()
    sparse = enable_rsa(copy.deepcopy(dense), k=1, block=8)
    ids = torch.randint(5, 1000, (2, 30))
    mask = torch.ones(2, 30, dtype=torch.long)
    mask[1, 19:] = 0
    with torch.no_grad():
        want = dense(input_ids=ids, attention_mask=mask).last_hidden_state
        got = sparse(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=1e-5), (got[real] - want[real]).abs().max()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("rsa"), TRAIN)


def test_rsa_bert_trains_and_exports_at_a_fixed_length(run_dir):
    history = metrics_log(run_dir)
    assert history[-1]["train_loss"] < history[0]["train_loss"], history
    meta = json.loads((run_dir / "model" / "etk.json").read_text())
    assert meta["metrics"]["accuracy"] > 0.6, meta["metrics"]
    record = json.loads((run_dir / "model" / "onnx.json").read_text())
    assert record["static_length"] == 64 and record["max_abs_diff"] <= 1e-4
    config = json.loads((run_dir / "model" / "encoder" / "config.json").read_text())
    assert config["rsa_k"] == 2 and config["rsa_block"] == 16


def test_onnx_predictions_equal_pytorch(run_dir):
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    records = load_records("synthetic_sentiment:test", {}, required=("text",))[:64]
    torch_out = Predictor(run_dir, backend="torch").predict(records)
    onnx_out = Predictor(run_dir, backend="onnx").predict(records)
    assert [p["label"] for p in torch_out] == [p["label"] for p in onnx_out]
    first = np.array([p["probabilities"][p["label"]] for p in torch_out])
    second = np.array([p["probabilities"][p["label"]] for p in onnx_out])
    assert np.abs(first - second).max() < 1e-4


def test_bad_rsa_settings_are_one_line_errors(tmp_path):
    result = run_cli(["train", "--model", "rsa-bert", "--set", "model.base=bert-tiny", "--set", "model.rsa_k=0",
                      "--data", "train=synthetic_sentiment:train", "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and "model.rsa_k" in result.output and not (tmp_path / "x").exists()
