"""mrc: SQuAD normalisation, exact match and F1; span decoding and metrics on hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest
from etk_apps.mrc import Mrc
from etk_apps.mrc.model import MASKED
from etk_apps.mrc.scores import best_over_golds, exact_match, normalize_answer, squad_scores, token_f1
from etk_apps.mrc.spans import best_in_window, decode_answer


def test_normalisation_follows_squad_v1():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre (a play)") == "theatre play"  # articles only as whole words
    assert normalize_answer("  \tU.S.A.\n") == "usa"
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert exact_match("Eiffel", "Eiffel tower") == 0.0


def test_token_f1_and_max_over_golds():
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)  # p = 2/2, r = 2/3
    assert token_f1("x b b", "b b c") == pytest.approx(2 / 3)  # multiset overlap 2: p = r = 2/3
    assert token_f1("a b b", "b b c") == pytest.approx(0.8)  # "a" is an article: p = 1, r = 2/3
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert token_f1("", "cat") == 0.0
    assert best_over_golds("golden statue", ["a golden statue of Mary", "the golden statue"]) == (1.0, 1.0)
    em, f1 = best_over_golds("statue of Mary", ["a golden statue of Mary", "Mary"])
    assert em == 0.0 and f1 == pytest.approx(2 * (1.0 * 0.75) / 1.75)
    assert best_over_golds("", []) == (1.0, 1.0)
    scores = squad_scores(["blue", "red car", "x"], [["Blue"], ["the red car", "car"], ["y"]])
    assert scores == {"exact_match": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3)}
    assert squad_scores([], []) == {}


OFFSETS = [None, None, None, (0, 3), (4, 7), (8, 13), (14, 16), None]  # [CLS] q q [SEP] p p p p [SEP]
CONTEXT = "the big house is"


def logits(values: dict[int, float], length: int = 8) -> np.ndarray:
    row = np.zeros(length, dtype=np.float32)
    for index, value in values.items():
        row[index] = value
    return row


def test_best_span_respects_order_length_and_passage():
    # end 4 would score best with start 5, but ends before starts are never chosen; question tokens never count
    best = best_in_window(logits({5: 5.0, 1: 9.0}), logits({4: 5.0, 6: 2.0, 2: 9.0}), OFFSETS)
    assert (best.start, best.end) == (5, 6)
    start, end = logits({3: 5.0}), logits({6: 5.0, 3: 2.0})
    assert (best_in_window(start, end, OFFSETS).start, best_in_window(start, end, OFFSETS).end) == (3, 6)
    short = best_in_window(start, end, OFFSETS, max_answer_len=2)  # (3, 6) is 4 tokens long
    assert (short.start, short.end) == (3, 3)
    top1 = best_in_window(logits({3: 5.0, 4: 4.0}), logits({3: 1.0, 4: 5.0}), OFFSETS, top_k=1)
    assert (top1.start, top1.end) == (3, 4)
    assert best_in_window(logits({5: 5.0}), logits({4: 5.0}), OFFSETS, top_k=1) is None  # only end < start
    assert best_in_window(start, end, [None] * 8) is None
    one_token = best_in_window(logits({4: 3.0}), logits({4: 3.0}), OFFSETS, max_answer_len=1)
    assert (one_token.start, one_token.end) == (4, 4)
    row = np.exp(logits({4: 3.0}))
    assert one_token.score == pytest.approx((row[4] / row.sum()) ** 2, rel=1e-5)


def test_decoding_over_windows_maps_back_to_characters():
    second = [None, None, None, (8, 13), (14, 16), None]  # a later window: "house is"
    windows = [(logits({4: 1.0}), logits({5: 1.0}), OFFSETS),
               (logits({3: 8.0}, 6), logits({3: 8.0}, 6), second)]
    answer = decode_answer(CONTEXT, windows)
    assert answer == {"answer": "house", "start": 8, "end": 13, "score": pytest.approx(answer["score"])}
    assert 0.5 < answer["score"] <= 1.0
    assert decode_answer(CONTEXT, windows[:1])["answer"] == "big house"
    assert decode_answer(CONTEXT, [(logits({}), logits({}), [None] * 8)]) == {"answer": "", "start": 0, "end": 0,
                                                                               "score": 0.0}


def test_metrics_and_postprocess_regroup_windows_by_owner():
    app = Mrc({}, None, 16)
    masked = np.full(8, MASKED, dtype=np.float32)
    first = dict(owner=0, offsets=OFFSETS, context=CONTEXT, answers=["the big house"])
    features = [first, dict(first, offsets=[None, None, (8, 13), (14, 16), None]),
                dict(owner=1, offsets=OFFSETS, context=CONTEXT, answers=["is", "house"])]
    start = np.empty(3, dtype=object)
    end = np.empty(3, dtype=object)
    start[:] = [logits({3: 6.0}), np.concatenate([logits({2: 1.0}, 5), masked[:3]]), logits({6: 4.0})]
    end[:] = [logits({5: 6.0}), np.concatenate([logits({2: 1.0}, 5), masked[:3]]), logits({6: 4.0})]
    outputs = {"start_logits": start, "end_logits": end}
    scores = app.metrics(outputs, features)
    assert scores == {"exact_match": 1.0, "f1": 1.0}
    predictions = app.postprocess(outputs, [{"text": "q"}, {"text": "q"}], features)
    assert [(p["answer"], p["start"], p["end"]) for p in predictions] == [("the big house", 0, 13), ("is", 14, 16)]
    assert all(type(p["score"]) is float for p in predictions)
    wrong = dict(outputs, end_logits=np.stack([logits({3: 6.0}), logits({2: 1.0}), logits({5: 4.0})]))
    scores = app.metrics(wrong, features)  # other spans: partly right
    assert 0.0 <= scores["exact_match"] < 1.0 and 0.0 < scores["f1"] < 1.0
