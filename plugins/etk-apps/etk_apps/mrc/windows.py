"""Sliding windows over long passages: `[CLS] question [SEP] passage window [SEP]`, with character offsets.

Built on the fast tokenizer's `return_overflowing_tokens` / `stride` / `return_offsets_mapping`. `overlap` is
the number of passage tokens two neighbouring windows share (the tokenizer's `stride`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Span = tuple[int, int]

#: Records tokenised per call of the tokenizer.
CHUNK = 256


@dataclass
class Window:
    """One window of one record: token ids and, per token, its passage character span (None elsewhere)."""

    owner: int
    input_ids: list[int]
    attention_mask: list[int]
    token_type_ids: list[int] | None
    offsets: list[Span | None]
    cls_index: int

    @property
    def passage_mask(self) -> list[int]:
        """1 for passage tokens and the CLS token (the "no answer here" position), 0 elsewhere."""
        return [1 if span is not None or i == self.cls_index else 0 for i, span in enumerate(self.offsets)]


def truncate_question(tokenizer: Any, question: str, max_tokens: int) -> str:
    """The question cut after its first `max_tokens` tokens (unchanged when shorter)."""
    encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    return question if len(offsets) <= max_tokens else question[: offsets[max_tokens - 1][1]]


def make_windows(tokenizer: Any, questions: Sequence[str], contexts: Sequence[str], max_length: int,
                 overlap: int) -> Iterator[Window]:
    """Every window of every (question, passage) pair, in record order; `owner` is the pair's index."""
    cls_id = tokenizer.cls_token_id
    for first in range(0, len(questions), CHUNK):
        encoded = tokenizer(list(questions[first:first + CHUNK]), list(contexts[first:first + CHUNK]),
                            truncation="only_second", max_length=max_length, stride=overlap,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
        for index, owner in enumerate(encoded["overflow_to_sample_mapping"]):
            ids = list(encoded["input_ids"][index])
            sequence_ids = encoded.sequence_ids(index)
            offsets = [tuple(span) if sequence == 1 else None
                       for span, sequence in zip(encoded["offset_mapping"][index], sequence_ids)]
            types = encoded.get("token_type_ids")
            yield Window(owner=first + owner, input_ids=ids, attention_mask=list(encoded["attention_mask"][index]),
                         token_type_ids=list(types[index]) if types is not None else None, offsets=offsets,
                         cls_index=ids.index(cls_id) if cls_id in ids else 0)


def answer_positions(window: Window, span: Span | None) -> tuple[int, int]:
    """Token indices of the first and last token of the answer span, or the CLS index twice when the span
    is absent or not wholly inside the window."""
    passage = [i for i, offset in enumerate(window.offsets) if offset is not None]
    if span is None or not passage:
        return window.cls_index, window.cls_index
    start, end = span
    first, last = window.offsets[passage[0]], window.offsets[passage[-1]]
    if start < first[0] or end > last[1]:
        return window.cls_index, window.cls_index
    start_token = next(i for i in passage if window.offsets[i][1] > start)
    end_token = next(i for i in reversed(passage) if window.offsets[i][0] < end)
    if end_token < start_token:  # a span of whitespace only
        return window.cls_index, window.cls_index
    return start_token, end_token


def history_mask(window: Window, spans: Sequence[Span]) -> list[int]:
    """m_t: 1 for passage tokens that overlap an earlier turn's answer span, else 0."""
    return [1 if offset is not None and any(offset[0] < end and offset[1] > start for start, end in spans) else 0
            for offset in window.offsets]
