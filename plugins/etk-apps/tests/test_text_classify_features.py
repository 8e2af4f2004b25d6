"""text_classify: labels, encoding, dynamic padding and data errors."""

from __future__ import annotations

import pytest
from etk_apps.text_classify import TextClassify

from etk_core.errors import ConfigError, DataError

RECORDS = [
    {"text": "good movie", "label": "pos", "_where": "train.tsv:2"},
    {"text": "the film was really very bad and not good", "label": "neg", "_where": "train.tsv:3"},
    {"text": "great", "label": "pos", "_where": "train.tsv:4"},
]


def make_app(tokenizer, max_length=32, **options):
    app = TextClassify({"name": "text_classify", **options}, tokenizer, max_length)
    app.fit_labels(RECORDS)
    return app


def test_labels_sorted_and_state(tokenizer):
    app = make_app(tokenizer, pooling="mean")
    assert app.labels == ["neg", "pos"]
    state = app.state()
    assert state["labels"] == ["neg", "pos"]
    assert {key: state["options"][key] for key in ("name", "pooling", "dropout", "model")} == {
        "name": "text_classify", "pooling": "mean", "dropout": 0.1, "model": "plm"}
    rebuilt = TextClassify(app.state()["options"], tokenizer, 32, labels=app.state()["labels"])
    assert rebuilt.encode(RECORDS[1])["label"] == 0


def test_encode_and_dynamic_padding(tokenizer):
    app = make_app(tokenizer, max_length=64)
    features = [app.encode(r) for r in RECORDS]
    assert [f["label"] for f in features] == [1, 0, 1]
    assert features[0]["input_ids"][0] == tokenizer.cls_token_id
    assert features[0]["input_ids"][-1] == tokenizer.sep_token_id
    lengths = [app.length(f) for f in features]
    assert lengths == [4, 11, 3]

    batch = app.collate(features)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape == (3, max(lengths))  # padded to the longest, not to max_length
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert batch["input_ids"][2, 3:].tolist() == [tokenizer.pad_token_id] * 8
    assert batch["labels"].tolist() == [1, 0, 1]

    short = app.collate(features[::2])
    assert short["input_ids"].shape == (2, 4)


def test_truncation_and_pairs(tokenizer):
    app = make_app(tokenizer, max_length=6)
    long = app.encode(RECORDS[1])
    assert len(long["input_ids"]) == 6 and long["input_ids"][-1] == tokenizer.sep_token_id
    pair = {"text": "good movie", "text_pair": "bad book", "label": "pos", "_where": "x:1"}
    assert make_app(tokenizer, max_length=8).encode(pair)["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert len(app.encode(pair)["input_ids"]) == 6
    unlabeled = app.encode({"text": "good", "_where": "test.tsv:9"}, with_label=False)
    assert "label" not in unlabeled
    assert "labels" not in app.collate([unlabeled])


def test_unknown_label_is_one_line(tokenizer):
    app = make_app(tokenizer)
    with pytest.raises(DataError) as info:
        app.encode({"text": "fine", "label": "neutral", "_where": "dev.tsv:17"})
    assert str(info.value) == "dev.tsv:17: label 'neutral' is not one of the training labels ['neg', 'pos']"


def test_single_class_and_bad_options(tokenizer):
    app = TextClassify({}, tokenizer, 16)
    with pytest.raises(DataError, match=r"^train\.tsv: .*at least 2 label values.*found only 'pos'") as info:
        app.fit_labels([RECORDS[0], RECORDS[2]])
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="app.pooling"):
        TextClassify({"pooling": "max"}, tokenizer, 16)
    with pytest.raises(DataError, match="^train.tsv:5: no text"):
        make_app(tokenizer).encode({"text": None, "label": "pos", "_where": "train.tsv:5"})
