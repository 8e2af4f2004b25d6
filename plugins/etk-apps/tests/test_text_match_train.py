"""text_match: every model trains through `etk train` (loss falls, dev accuracy above chance), exports with
ONNX Runtime matching PyTorch, and `etk predict` writes labels with probabilities.

Data: `synthetic_pairs` (label "1" = the two questions share most content words; the majority class is 52.5%
of dev). The cross-encoder uses the pre-trained `minilm-l6`: a randomly initialised bert-tiny reading both
questions as one sequence memorises the 800 training pairs but stays near chance on dev within a few hundred
steps, while every other model learns from bert-tiny's vocabulary (or its random encoder, for `bi`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from etk_core.testing import metrics_log, needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

COMMON = ["--app", "text_match", "--data", "train=synthetic_pairs:train", "--data", "dev=synthetic_pairs:dev",
          "--set", "train.batch_size=16", "--set", "train.max_length=32", "--set", "train.threads=1"]
SMALL_CLASSIC = ["--set", "app.embedding_dim=64", "--set", "app.num_filters=32"]
CASES: dict[str, list[str]] = {
    "cross": ["--model", "minilm-l6", "--set", "train.lr=1e-4", "--set", "train.max_steps=30"],
    "bi": ["--model", "bert-tiny", "--set", "app.model=bi", "--set", "train.lr=2e-3", "--set", "train.max_steps=160"],
    "bi-cosine": ["--model", "bert-tiny", "--set", "app.model=bi", "--set", "app.bi_head=cosine",
                  "--set", "train.lr=1e-3", "--set", "train.max_steps=160"],
    "bicnn": ["--model", "bert-tiny", "--set", "app.model=bicnn", "--set", "app.abs_difference=true",
              "--set", "train.lr=1e-3", "--set", "train.max_steps=160", *SMALL_CLASSIC],
    "hcnn": ["--model", "bert-tiny", "--set", "app.model=hcnn", "--set", "train.lr=1e-3",
             "--set", "train.max_steps=160", *SMALL_CLASSIC],
    "dam": ["--model", "bert-tiny", "--set", "app.model=dam", "--set", "train.lr=1e-3",
            "--set", "train.max_steps=160", *SMALL_CLASSIC],
    "dam_plus": ["--model", "bert-tiny", "--set", "app.model=dam_plus", "--set", "train.lr=1e-3",
                 "--set", "train.max_steps=160", *SMALL_CLASSIC],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """case -> run folder, each trained once per module (two evaluations: half-way and at the end)."""
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    runs: dict[str, object] = {}

    def get(case: str):
        if case not in runs:
            out = tmp_path_factory.mktemp(case) / "run"
            args = CASES[case]
            steps = int(next(a for a in args if a.startswith("train.max_steps=")).split("=")[1])
            result = run_cli(["train", *COMMON, *args, "--set", f"train.eval_every={steps // 2}",
                              "--output", str(out)])
            assert result.exit_code == 0, result.output
            runs[case] = out
        return runs[case]

    return get


@pytest.mark.parametrize("case", list(CASES))
def test_trains_loss_falls_and_beats_chance(trained, case):
    run_dir = trained(case)
    history = metrics_log(run_dir)
    assert len(history) == 2
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    meta = json.loads((run_dir / "model" / "etk.json").read_text())
    assert meta["app"]["name"] == "text_match" and meta["app_state"]["labels"] == ["0", "1"]
    assert meta["metrics"]["accuracy"] > 0.65, meta["metrics"]
    assert set(meta["metrics"]) == {"accuracy", "macro_f1", "auc"}
    export = json.loads((run_dir / "model" / "onnx.json").read_text())
    assert export["max_abs_diff"] < 1e-4
    separate = ["input_ids", "attention_mask", "pair_input_ids", "pair_attention_mask"]
    assert export["inputs"] == (separate if case != "cross" else ["input_ids", "attention_mask", "token_type_ids"])


@pytest.mark.parametrize("case", ["cross", "bi", "hcnn", "dam_plus"])
def test_onnx_matches_pytorch_on_dev(trained, case):
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    run_dir = trained(case)
    records = load_records("synthetic_pairs:dev", {}, required=("text", "text_pair", "label"))[:96]
    torch_predictor = Predictor(run_dir, backend="torch", batch_size=13)
    onnx_predictor = Predictor(run_dir, backend="onnx", batch_size=7)
    features = torch_predictor.app.encode_all(records, with_label=False)
    a, b = torch_predictor.outputs(features)["logits"], onnx_predictor.outputs(features)["logits"]
    assert a.shape == b.shape == (96, 2)
    assert np.abs(a - b).max() < 1e-4
    assert onnx_predictor.evaluate(records)["accuracy"] == pytest.approx(torch_predictor.evaluate(records)["accuracy"])


def test_predict_writes_labels_and_probabilities(trained, tmp_path):
    run_dir = trained("bi-cosine")
    source = tmp_path / "questions.tsv"
    source.write_text("id\tquestion1\tquestion2\n1\tbank card fee refund\tcard fee refund bank\n"
                      "2\tflight delay gate\tguitar concert album\n")
    target = tmp_path / "out.jsonl"
    result = run_cli(["predict", str(run_dir), "--input", str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["1", "2"] and rows[0]["question2"] == "card fee refund bank"
    for row in rows:
        assert row["prediction"]["label"] in ("0", "1")
        assert sum(row["prediction"]["probabilities"].values()) == pytest.approx(1.0)
    assert rows[0]["prediction"]["probabilities"]["1"] > rows[1]["prediction"]["probabilities"]["1"]
    missing = tmp_path / "single.tsv"
    missing.write_text("question1\nbank card\n")
    result = run_cli(["predict", str(run_dir), "--input", str(missing), "--output", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "no text_pair" in result.output
