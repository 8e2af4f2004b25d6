"""Gold answers and dialogue history of MRC records, checked against the passage (one-line errors).

`answers`: a list of `{"text", "answer_start"}` (SQuAD), the dict of lists Hugging Face datasets use
(`{"text": [...], "answer_start": [...]}`), or either as a JSON string (a TSV/CSV cell).
`history`: earlier turns of the same dialogue, oldest first, each `{"question", "answer": {"text",
"answer_start"}}` (`answers: [...]` or `orig_answer` also work; a turn without an answer is skipped).
"""

from __future__ import annotations

import json
from typing import Any

from etk_core.errors import DataError
from etk_core.interfaces import Record

Answer = tuple[str, int]
Span = tuple[int, int]

_SHAPE = 'give answers as [{"text": ..., "answer_start": ...}]'


def _where(record: Record) -> str:
    return str(record.get("_where", "?"))


def _decoded(value: Any, record: Record, key: str) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{_where(record)}: {key} is not valid JSON ({exc.msg}); fix the cell") from None
    return value


def _answer(item: Any, record: Record, what: str) -> Answer:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise DataError(f"{_where(record)}: {what} {item!r:.60} has no text; {_SHAPE}")
    start = item.get("answer_start")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise DataError(f"{_where(record)}: {what} {item['text']!r:.60} has answer_start {start!r}, expected a "
                        f"character offset >= 0; {_SHAPE}")
    return item["text"], start


def gold_answers(record: Record) -> list[Answer]:
    """The record's gold answers as (text, answer_start); an empty list for an unanswerable question."""
    value = _decoded(record.get("answers"), record, "answers")
    if value is None:
        raise DataError(f"{_where(record)}: no answers; every training and evaluation question needs them "
                        f"({_SHAPE})")
    if isinstance(value, dict) and isinstance(value.get("text"), list):
        starts = value.get("answer_start")
        if not isinstance(starts, list) or len(starts) != len(value["text"]):
            raise DataError(f"{_where(record)}: answers text and answer_start lists differ in length; {_SHAPE}")
        value = [{"text": t, "answer_start": s} for t, s in zip(value["text"], starts)]
    elif isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise DataError(f"{_where(record)}: answers is {type(value).__name__}, expected a list; {_SHAPE}")
    return [_answer(item, record, "answer") for item in value]


def locate(context: str, answer: Answer, record: Record, what: str = "answer") -> Span:
    """The answer's character span [start, end): at `answer_start`, else its nearest occurrence."""
    text, start = answer
    if context[start:start + len(text)] == text:
        return start, start + len(text)
    found, occurrences = context.find(text), []
    while found != -1 and text:
        occurrences.append(found)
        found = context.find(text, found + 1)
    if not occurrences:
        raise DataError(f"{_where(record)}: {what} {text!r:.60} does not occur in the passage (answer_start "
                        f"{start}); fix the answer text or the passage")
    best = min(occurrences, key=lambda position: abs(position - start))
    return best, best + len(text)


def _turn_answer(turn: Any, record: Record, number: int) -> Answer | None:
    what = f"history turn {number}"
    if not isinstance(turn, dict):
        raise DataError(f"{_where(record)}: {what} is {type(turn).__name__}, expected an object with "
                        f"question and answer")
    for key in ("answer", "orig_answer"):
        if isinstance(turn.get(key), dict):
            return _answer(turn[key], record, f"{what} answer")
    answers = turn.get("answers")
    if isinstance(answers, list) and answers:
        return _answer(answers[0], record, f"{what} answer")
    return None


def history_spans(record: Record, context: str, turns: int | None = None) -> list[Span]:
    """Character spans of the answers of the last `turns` earlier turns (all when None)."""
    history = _decoded(record.get("history"), record, "history")
    if history is None:
        return []
    if not isinstance(history, list):
        raise DataError(f"{_where(record)}: history is {type(history).__name__}, expected a list of earlier "
                        f"turns with question and answer")
    numbered = list(enumerate(history, 1))
    if turns is not None:
        numbered = numbered[len(numbered) - turns:] if turns > 0 else []
    spans = []
    for number, turn in numbered:
        answer = _turn_answer(turn, record, number)
        if answer is not None and answer[0]:
            spans.append(locate(context, answer, record, f"history turn {number} answer"))
    return spans
