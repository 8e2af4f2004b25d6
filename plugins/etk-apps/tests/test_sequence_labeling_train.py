"""sequence_labeling through `etk train`: every model learns generated NER data; ONNX export equals PyTorch."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from etk_core.testing import metrics_log, needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

PERSON_FIRST, PERSON_LAST = ["john", "mary", "peter", "susan", "james", "anna"], ["smith", "brown", "jones"]
PLACES = [["paris"], ["london"], ["berlin"], ["tokyo"], ["new", "york"]]
COMPANIES = ["google", "microsoft", "apple", "amazon"]
FILLER = "the said on monday that visited met with and in a report today will go to".split()


def _entity(rng: random.Random) -> tuple[list[str], list[str]]:
    kind = rng.choice(["PER", "LOC", "ORG"])
    if kind == "PER":
        words = [rng.choice(PERSON_FIRST)] + ([rng.choice(PERSON_LAST)] if rng.random() < 0.5 else [])
    elif kind == "LOC":
        words = list(rng.choice(PLACES))
    else:
        words = [rng.choice(COMPANIES)] + (["inc"] if rng.random() < 0.3 else [])
    return words, [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)


def sentences(count: int, seed: int) -> list[dict]:
    """Generated sentences: filler words around 1-3 person / place / company names (some of two words)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        tokens, tags = [], []
        for _ in range(rng.randint(1, 3)):
            filler = rng.choices(FILLER, k=rng.randint(1, 4))
            words, labels = _entity(rng)
            tokens += filler + words
            tags += ["O"] * len(filler) + labels
        out.append({"tokens": tokens, "tags": tags})
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ner")
    train, dev = folder / "train.jsonl", folder / "dev.conll"
    train.write_text("".join(json.dumps(s) + "\n" for s in sentences(96, seed=1)), encoding="utf-8")
    dev.write_text("-DOCSTART- -X- O\n\n" + "\n".join(
        "".join(f"{token} X {tag}\n" for token, tag in zip(s["tokens"], s["tags"])) for s in sentences(32, seed=2)),
        encoding="utf-8")
    (folder / "input.conll").write_text(
        "\n".join("".join(f"{token}\n" for token in s["tokens"]) for s in sentences(20, seed=3)), encoding="utf-8")
    return {"train": train, "dev": dev, "input": folder / "input.conll", "folder": folder}


@pytest.fixture(autouse=True)
def _restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def train(data: dict[str, Path], model: str, output: Path, epochs: int = 3):
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    result = run_cli(["train", "--app", "sequence_labeling", "--model", "bert-tiny", "--data", f"train={data['train']}",
                      "--data", f"dev={data['dev']}", "--set", f"app.model={model}", "--set", "app.lstm_hidden=32",
                      "--set", f"train.epochs={epochs}", "--set", "train.batch_size=16", "--set", "train.lr=5e-3",
                      "--set", "train.max_length=32", "--set", "train.threads=1", "--output", str(output)])
    assert result.exit_code == 0, result.output
    return metrics_log(output)


@pytest.fixture(scope="module")
def bilstm_run(data) -> Path:
    output = data["folder"] / "bilstm"
    train(data, "bert_bilstm_crf", output, epochs=6)
    return output


@pytest.mark.parametrize("model", ["softmax", "bert_crf"])
def test_model_learns_entities(data, tmp_path, model):
    history = train(data, model, tmp_path / "run")
    _check_learned(history)


def test_bilstm_crf_learns_entities(bilstm_run):
    _check_learned(metrics_log(bilstm_run))


def _check_learned(history: list[dict]) -> None:
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    # predicting O everywhere (the majority tag) finds no entity: F1 0
    assert max(h["f1"] for h in history) > 0.6, history
    assert {"precision", "recall", "accuracy", "f1_PER", "f1_LOC", "f1_ORG"} <= set(history[-1])


def test_export_matches_pytorch(bilstm_run, data):
    from etk_core.data.load import load_records
    from etk_core.predict import Predictor

    record = json.loads((bilstm_run / "model" / "onnx.json").read_text())
    assert record["outputs"] == ["emissions", "transitions"] and record["max_abs_diff"] < 1e-4
    records = load_records(str(data["dev"]), {}, required=("tokens", "tags"))
    by_torch, by_onnx = Predictor(bilstm_run, backend="torch", batch_size=5), Predictor(bilstm_run, backend="onnx",
                                                                                         batch_size=8)
    features = by_torch.app.encode_all(records, with_label=False)
    left, right = by_torch.outputs(features), by_onnx.outputs(features)
    for index, feature in enumerate(features):
        length = len(feature["input_ids"])
        assert np.abs(left["emissions"][index][:length] - right["emissions"][index][:length]).max() < 1e-4
    assert np.abs(left["transitions"] - right["transitions"]).max() < 1e-4
    assert by_torch.predict(records) == by_onnx.predict(records)
    assert by_torch.evaluate(records)["f1"] == pytest.approx(by_onnx.evaluate(records)["f1"])


def test_predict_and_evaluate_commands(bilstm_run, data, tmp_path):
    outputs = {}
    for backend in ("torch", "onnx"):
        target = tmp_path / f"{backend}.jsonl"
        result = run_cli(["predict", str(bilstm_run), "--input", str(data["input"]), "--output", str(target),
                          "--backend", backend])
        assert result.exit_code == 0, result.output
        outputs[backend] = [json.loads(line) for line in target.read_text().splitlines()]
    assert outputs["torch"] == outputs["onnx"] and len(outputs["torch"]) == 20
    row = outputs["torch"][0]
    assert set(row) == {"tokens", "prediction"} and len(row["prediction"]["tags"]) == len(row["tokens"])
    for entity in (e for row in outputs["torch"] for e in row["prediction"]["entities"]):
        assert set(entity) == {"text", "type", "start", "end", "token_start", "token_end"}
    for row in outputs["torch"]:
        text = " ".join(row["tokens"])
        assert all(text[e["start"]:e["end"]] == e["text"] for e in row["prediction"]["entities"])
    found = [e["text"] for row in outputs["torch"] for e in row["prediction"]["entities"]]
    assert found and any(name in found for name in PERSON_FIRST + COMPANIES)
    result = run_cli(["evaluate", str(bilstm_run), "--data", f"dev={data['dev']}", "--json"])
    assert result.exit_code == 0, result.output
    best = max(row["f1"] for row in metrics_log(bilstm_run))
    assert json.loads(result.stdout)["f1"] == pytest.approx(best)
