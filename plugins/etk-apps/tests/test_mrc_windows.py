"""mrc features: sliding windows over long passages, gold answers on the right tokens, history marks, batches."""

from __future__ import annotations

import logging

import pytest
from etk_apps.mrc import Mrc

from etk_core.errors import ConfigError, DataError
from etk_core.testing import needs_packaged_minilm

pytestmark = needs_packaged_minilm()

WORDS = ("the quick brown fox jumps over the lazy dog while seven grey wolves watch from a distant hill near "
         "old paris , singing softly about unbelievable adventures").split()


@pytest.fixture(scope="module")
def fast_tokenizer():
    from etk_core.zoo import load_backbone

    return load_backbone({"name": "bert-tiny"})[1]


def long_passage(words: int = 300) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words))


def word_spans(context: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for word in context.split(" "):
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return spans


def passage_spans(feature) -> list[tuple[int, int]]:
    """The character spans of a window's passage tokens (offsets are -1 elsewhere)."""
    return [(int(start), int(end)) for start, end in feature["offsets"] if start >= 0]


def make_app(tokenizer, max_length=48, **options):
    return Mrc({"max_question_len": 8, "doc_stride": 16, **options}, tokenizer, max_length)


def test_windows_cover_long_passages_with_the_stride(fast_tokenizer):
    app = make_app(fast_tokenizer)
    context = long_passage()
    record = {"text": "what is said ?", "text_pair": context, "_where": "x:1"}
    features = app.encode_all([record], with_label=False)
    assert len(features) > 5 and all(f["owner"] == 0 for f in features)
    assert all(len(f["input_ids"]) <= 48 for f in features)
    passages = [passage_spans(f) for f in features]
    for previous, following in zip(passages, passages[1:]):
        assert previous[-16:] == following[:16]  # neighbouring windows share doc_stride tokens
    covered = sorted({span for spans in passages for span in spans})
    everything = fast_tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert covered == sorted(tuple(span) for span in everything)
    first = features[0]
    assert first["input_ids"][0] == fast_tokenizer.cls_token_id
    assert fast_tokenizer.decode(first["input_ids"][1:5]) == "what is said?"
    assert first["passage_mask"] == [1] + [0] * 5 + [1] * (len(first["input_ids"]) - 7) + [0]
    assert first["context"] is context and "label" not in first and "history_mask" not in first
    assert first["offsets"].dtype.name == "int32" and first["offsets"][:6].tolist() == [[-1, -1]] * 6


def test_every_gold_answer_maps_to_its_tokens(fast_tokenizer):
    app = make_app(fast_tokenizer)
    context = long_passage(120)
    spans = word_spans(context)
    records = []
    for index in range(0, len(spans) - 3, 5):  # answers of 1 to 3 words all along the passage
        start, end = spans[index][0], spans[index + index % 3][1]
        records.append({"text": "which words ?", "text_pair": context, "_where": f"x:{index}",
                        "answers": [{"text": context[start:end], "answer_start": start}]})
    features = app.encode_all(records)
    for owner, record in enumerate(records):
        gold = record["answers"][0]["text"]
        windows = [f for f in features if f["owner"] == owner]
        inside = [f for f in windows if f["label"] != [0, 0]]
        assert inside, f"answer {gold!r} is in no window"
        for feature in inside:
            first, last = feature["label"]
            assert context[feature["offsets"][first][0]:feature["offsets"][last][1]] == gold
        for feature in windows:
            assert feature["answers"] == [gold]
            if feature not in inside:  # the answer is not wholly inside: the CLS token is the target
                passage = passage_spans(feature)
                start = record["answers"][0]["answer_start"]
                assert start < passage[0][0] or start + len(gold) > passage[-1][1]


def test_answers_in_other_shapes_and_misplaced_offsets(fast_tokenizer):
    app = make_app(fast_tokenizer, max_length=128)
    context = "the fox sat . the fox ran ."
    base = {"text": "what did the fox do ?", "text_pair": context, "_where": "train.jsonl:3"}
    shapes = [{"text": ["ran"], "answer_start": [22]}, '[{"text": "ran", "answer_start": 22}]',
              {"text": "ran", "answer_start": 22}, [{"text": "ran", "answer_start": 20}]]  # last: off by two
    for answers in shapes:
        (feature,) = app.encode_all([dict(base, answers=answers)])
        first, last = feature["label"]
        assert context[feature["offsets"][first][0]:feature["offsets"][last][1]] == "ran"
    (empty,) = app.encode_all([dict(base, answers=[])])  # unanswerable: the CLS token
    assert empty["label"] == [0, 0] and empty["answers"] == []


@pytest.mark.parametrize(("answers", "message"), [
    ([{"text": "flew", "answer_start": 4}], r"^train\.jsonl:3: answer 'flew' does not occur in the passage"),
    ([{"text": "ran", "answer_start": -1}], r"^train\.jsonl:3: answer 'ran' has answer_start -1"),
    ([{"answer_start": 2}], r"^train\.jsonl:3: answer .* has no text"),
    ("[{oops", r"^train\.jsonl:3: answers is not valid JSON"),
    (None, r"^train\.jsonl:3: no answers"),
])
def test_bad_answers_are_one_line_errors(fast_tokenizer, answers, message):
    app = make_app(fast_tokenizer)
    record = {"text": "q ?", "text_pair": "the fox ran .", "answers": answers, "_where": "train.jsonl:3"}
    with pytest.raises(DataError, match=message) as info:
        app.encode_all([record])
    assert "\n" not in str(info.value)
    assert app.encode_all([record], with_label=False)  # predictions do not read answers


def test_missing_passage_and_bad_options(fast_tokenizer):
    with pytest.raises(DataError, match=r"^dev\.json:7: no passage .*data\.text_pair"):
        make_app(fast_tokenizer).encode_all([{"text": "q", "text_pair": None, "_where": "dev.json:7"}])
    with pytest.raises(ConfigError, match="app.model 'bidaf'"):
        Mrc({"model": "bidaf"}, fast_tokenizer, 64)
    with pytest.raises(ConfigError, match="app.max_answer_len"):
        Mrc({"max_answer_len": 0}, fast_tokenizer, 64)
    with pytest.raises(ConfigError, match="app.history_turns"):
        Mrc({"history_turns": -1}, fast_tokenizer, 64)
    with pytest.raises(ConfigError, match="too short"):
        Mrc({}, fast_tokenizer, 5).encode_all([{"text": "q", "text_pair": "p", "_where": "x"}], with_label=False)


def test_slow_tokenizer_is_refused():
    class SlowTokenizer:  # a Python tokenizer gives no character offsets
        is_fast = False

    with pytest.raises(ConfigError, match="fast"):
        Mrc({}, SlowTokenizer(), 64).encode_all([{"text": "q", "text_pair": "good", "_where": "x"}], with_label=False)


def test_long_questions_are_cut_and_caps_are_logged(fast_tokenizer, caplog):
    app = make_app(fast_tokenizer, max_question_len=4)
    (feature,) = app.encode_all([{"text": "one two three four five six", "text_pair": "p", "_where": "x"}], False)
    assert fast_tokenizer.decode(feature["input_ids"]) == "[CLS] one two three four [SEP] p [SEP]"
    with caplog.at_level(logging.INFO, logger="etk.apps.mrc"):
        capped = Mrc({}, fast_tokenizer, 48)  # defaults: 64 question tokens, stride 128
        capped.encode_all([{"text": "q", "text_pair": long_passage(100), "_where": "x"}], with_label=False)
    assert capped._window_plan() == (22, 11)  # 45 free tokens: 22 for the question, stride half of 23
    assert "capped" in caplog.text


def test_history_marks_earlier_answers(fast_tokenizer):
    app = make_app(fast_tokenizer, model="hae")
    context = "we saw red , paris , anna and seven ."
    history = [{"question": "what is the colour ?", "answer": {"text": "red", "answer_start": 7}},
               {"question": "what else ?", "answers": [{"text": "paris ,", "answer_start": 13}]},
               {"question": "no answer ?", "answers": []}]
    record = {"text": "what else ?", "text_pair": context, "history": history, "_where": "x"}
    (feature,) = app.encode_all([record], with_label=False)
    marked = [fast_tokenizer.decode([token]) for token, m in zip(feature["input_ids"], feature["history_mask"]) if m]
    assert marked == ["red", "paris", ","]
    (last,) = make_app(fast_tokenizer, model="hae", history_turns=2).encode_all([record], with_label=False)
    assert sum(last["history_mask"]) == 2  # the last two turns: "paris ," and one without an answer
    (none,) = make_app(fast_tokenizer, model="hae", history_turns=0).encode_all([record], with_label=False)
    assert sum(none["history_mask"]) == 0
    (plain,) = make_app(fast_tokenizer).encode_all([record], with_label=False)
    assert "history_mask" not in plain
    bad = dict(record, history=[{"question": "?", "answer": {"text": "blue", "answer_start": 0}}], _where="d.json:9")
    with pytest.raises(DataError, match=r"^d\.json:9: history turn 1 answer 'blue' does not occur"):
        app.encode_all([bad], with_label=False)


def test_collate_pads_every_mask(fast_tokenizer):
    app = make_app(fast_tokenizer, model="hae")
    records = [{"text": "q ?", "text_pair": text, "answers": [{"text": "fox", "answer_start": 4}],
                "history": [{"question": "?", "answer": {"text": "the", "answer_start": 0}}], "_where": "x"}
               for text in ("the fox", "the fox ran far away")]
    features = app.encode_all(records)
    batch = app.collate(features)
    assert list(batch) == ["input_ids", "attention_mask", "token_type_ids", "passage_mask", "history_mask", "labels"]
    longest = max(len(f["input_ids"]) for f in features)
    assert all(value.shape == (2, longest) for key, value in batch.items() if key != "labels")
    assert batch["labels"].tolist() == [[5, 5], [5, 5]]
    assert batch["passage_mask"][0].tolist() == [1, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert batch["history_mask"][0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert "labels" not in app.collate(app.encode_all(records, with_label=False))
