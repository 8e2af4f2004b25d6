"""text_classify with app.model=textcnn: trains through `etk train`, exports, predicts; a given vocabulary
and word vectors are loaded, and the artifact keeps them (it predicts after their files are gone)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from etk_core.testing import AppContract, metrics_log, needs_packaged_minilm, run_cli, train_run

pytestmark = needs_packaged_minilm()

TRAIN = ["train", "--app", "text_classify", "--model", "bert-tiny", "--data", "train=synthetic_sentiment:train",
         "--data", "dev=synthetic_sentiment:dev", "--set", "app.model=textcnn", "--set", "app.embedding_dim=32",
         "--set", "app.num_filters=32", "--set", "train.max_steps=100", "--set", "train.eval_every=50",
         "--set", "train.lr=2e-3", "--set", "train.batch_size=16", "--set", "train.max_length=64",
         "--set", "train.threads=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("textcnn"), TRAIN)


def test_textcnn_loss_falls_and_beats_chance(run_dir):
    history = metrics_log(run_dir)
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    meta = json.loads((run_dir / "model" / "etk.json").read_text())
    assert meta["metrics"]["accuracy"] > 0.65, meta["metrics"]
    assert meta["app_state"]["options"]["model"] == "textcnn" and meta["app_state"]["options"]["vocab"] is None
    export = json.loads((run_dir / "model" / "onnx.json").read_text())
    assert export["inputs"] == ["input_ids", "attention_mask"] and export["max_abs_diff"] < 1e-4


def test_textcnn_onnx_and_predict(run_dir, tmp_path):
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    records = load_records("synthetic_sentiment:dev", {}, required=("text", "label"))[:80]
    torch_predictor, onnx_predictor = Predictor(run_dir, backend="torch", batch_size=9), Predictor(run_dir)
    assert onnx_predictor.backend == "onnx"
    features = torch_predictor.app.encode_all(records, with_label=False)
    assert np.abs(torch_predictor.outputs(features)["logits"] - onnx_predictor.outputs(features)["logits"]).max() < 1e-4
    target = tmp_path / "out.jsonl"
    result = run_cli(["predict", str(run_dir), "--input", "synthetic_sentiment:test", "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 200 and set(rows[0]["prediction"]) == {"label", "probabilities"}
    assert set(rows[0]["prediction"]["probabilities"]) == {"negative", "positive"}


def test_given_vocabulary_and_word_vectors(tmp_path):
    from etk_core.data.datasets.synthetic import FILLER, NEGATIVE, POSITIVE
    from etk_core.predict import Predictor

    rng = np.random.default_rng(0)
    lines = []
    for word in [*POSITIVE, *NEGATIVE, *FILLER]:
        vector = rng.normal(0, 0.3, 16)
        vector[0] = 2.0 if word in POSITIVE else -2.0 if word in NEGATIVE else 0.0
        lines.append(word + " " + " ".join(f"{v:.5f}" for v in vector))
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(f"{len(lines)} 16\n" + "\n".join(lines) + "\n")  # word2vec text format
    out = tmp_path / "run"
    result = run_cli([*TRAIN, "--set", f"app.vocab={vectors}", "--set", f"app.embeddings={vectors}",
                      "--set", "app.embedding_dim=16", "--set", "app.freeze_embeddings=true",
                      "--set", "train.max_steps=60", "--set", "train.eval_every=30", "--output", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "model" / "etk.json").read_text())
    assert meta["metrics"]["accuracy"] > 0.8, meta["metrics"]  # the vectors carry the sentiment
    state = meta["app_state"]["options"]
    assert state["vocab"][:2] == ["[PAD]", "[UNK]"] and len(state["vocab"]) == len(lines) + 3
    assert state["embeddings"] is None and meta["app"]["embeddings"] == str(vectors)
    vectors.unlink()  # the artifact holds the word list and the (frozen) vectors
    predictor = Predictor(out, backend="torch")
    table = predictor.artifact.model.embedding.weight.detach().numpy()
    index = state["vocab"].index("good")
    assert table[index][0] == pytest.approx(2.0) and table[0].tolist() == [0.0] * 16
    predictions = predictor.predict(["A good, great and wonderful day.", "Awful, terrible, boring and bad."])
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    onnx = Predictor(out, backend="onnx").predict(["A good, great and wonderful day."])
    assert onnx[0]["probabilities"]["positive"] == pytest.approx(predictions[0]["probabilities"]["positive"], abs=1e-5)


class TestTextCnnContract(AppContract):
    component_name = "text_classify"
    app_options = {"model": "textcnn", "embedding_dim": 32}
