"""text_classify: the model learns a separable toy task; metrics and predictions on hand-made logits."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from etk_apps.text_classify import TextClassify

POSITIVE = "good great fine nice happy love best".split()
NEGATIVE = "bad awful poor sad hate worst".split()
FILLER = "the a movie film book was is it this very really".split()


def toy_records(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for index in range(count):
        label = "pos" if index % 2 else "neg"
        words = rng.sample(FILLER, 3) + [rng.choice(POSITIVE if label == "pos" else NEGATIVE)]
        rng.shuffle(words)
        records.append({"text": " ".join(words), "label": label, "_where": f"toy:{index + 1}"})
    return records


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_training_lowers_loss_and_beats_chance(tokenizer, tiny_encoder, pooling):
    app = TextClassify({"pooling": pooling}, tokenizer, 16)
    train, dev = toy_records(64, seed=1), toy_records(32, seed=2)
    app.fit_labels(train)
    model = app.build_model(tiny_encoder)
    assert model.encoder is tiny_encoder and isinstance(model.head, torch.nn.Linear)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    features = [app.encode(r) for r in train]

    def loss_on_train() -> float:
        model.eval()
        with torch.no_grad():
            return float(model(**app.collate(features))["loss"])

    before = loss_on_train()
    rng = random.Random(0)
    for _ in range(48):
        model.train()
        batch = app.collate(rng.sample(features, 16))
        loss = model(**batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss_on_train() < before * 0.5

    dev_features = [app.encode(r) for r in dev]
    model.eval()
    with torch.no_grad():
        outputs = model(**{k: v for k, v in app.collate(dev_features).items() if k != "labels"})
    assert "loss" not in outputs
    scores = app.metrics({"logits": outputs["logits"].numpy()}, dev_features)
    assert scores["accuracy"] > 0.75
    assert set(scores) == {"accuracy", "macro_f1", "auc"}


def test_metrics_on_hand_made_logits(tokenizer):
    app = TextClassify({}, tokenizer, 16, labels=["neg", "pos"])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, 3.0]])
    features = [{"label": 0}, {"label": 1}, {"label": 1}, {"label": 1}]
    scores = app.metrics({"logits": logits}, features)
    # predictions 0,1,0,1 -> 3/4 right; F1(neg)=2/3, F1(pos)=0.8; positive-class ranking: 1 of 3 pairs wrong
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert scores["auc"] == pytest.approx(1.0)
    assert all(type(v) is float for v in scores.values())

    one_class = app.metrics({"logits": logits[1:]}, features[1:])
    assert "auc" not in one_class and one_class["accuracy"] == pytest.approx(2 / 3)

    three = TextClassify({}, None, 16, labels=["a", "b", "c"])
    logits3 = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]])
    scores3 = three.metrics({"logits": logits3}, [{"label": 0}, {"label": 1}, {"label": 2}, {"label": 2}])
    assert scores3["accuracy"] == pytest.approx(0.75) and "auc" not in scores3
    assert scores3["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_postprocess_probabilities(tokenizer):
    app = TextClassify({}, tokenizer, 16, labels=["neg", "pos"])
    logits = np.array([[2.0, -1.0], [0.0, 4.0], [1000.0, 0.0]], dtype=np.float32)
    predictions = app.postprocess({"logits": logits}, [{"text": "x"}] * 3)
    assert [p["label"] for p in predictions] == ["neg", "pos", "neg"]
    for prediction in predictions:
        assert set(prediction["probabilities"]) == {"neg", "pos"}
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
        assert all(type(v) is float for v in prediction["probabilities"].values())
