"""Span decoding: the best answer span of a question over all its windows, mapped back to characters.

Per window, start and end log-probabilities are a softmax over that window's tokens; candidates are the
`top_k` passage tokens by start and by end logit, with start <= end and at most `max_answer_len` tokens.
A span's score is p(start) * p(end) in its window; the best over all windows of the question wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

Span = tuple[int, int]

if TYPE_CHECKING:
    import numpy as np

    #: Per token, its character span in the passage: a list (None outside it) or `offsets_array`'s array.
    Offsets = Sequence[Span | None] | np.ndarray


@dataclass(frozen=True)
class Candidate:
    """A span of one window: its score and first/last token indices."""

    score: float
    start: int
    end: int


def offsets_array(offsets: Offsets) -> np.ndarray:
    """Token character spans as an int32 array (tokens, 2), (-1, -1) for tokens outside the passage."""
    import numpy as np

    if isinstance(offsets, np.ndarray):
        return offsets
    rows = [(-1, -1) if offset is None else offset for offset in offsets]
    return np.array(rows, dtype=np.int32).reshape(-1, 2)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    values = np.asarray(logits, dtype=np.float64)
    shifted = values - values.max()
    return shifted - np.log(np.exp(shifted).sum())


def best_in_window(start_logits: np.ndarray, end_logits: np.ndarray, offsets: Offsets,
                   max_answer_len: int = 30, top_k: int = 20) -> Candidate | None:
    """The highest-scoring valid span of one window (logits cut to the window's length), or None."""
    import numpy as np

    offsets = offsets_array(offsets)
    length = len(offsets)
    log_start, log_end = _log_softmax(start_logits[:length]), _log_softmax(end_logits[:length])
    passage = np.flatnonzero(offsets[:, 0] >= 0)
    if passage.size == 0:
        return None
    starts = passage[np.argsort(-log_start[passage], kind="stable")[:top_k]]
    ends = passage[np.argsort(-log_end[passage], kind="stable")[:top_k]]
    pair_scores = log_start[starts][:, None] + log_end[ends][None, :]
    width = ends[None, :] - starts[:, None] + 1
    pair_scores = np.where((width >= 1) & (width <= max_answer_len), pair_scores, -np.inf)
    row, column = np.unravel_index(int(np.argmax(pair_scores)), pair_scores.shape)
    if not np.isfinite(pair_scores[row, column]):
        return None
    return Candidate(float(np.exp(pair_scores[row, column])), int(starts[row]), int(ends[column]))


def decode_answer(context: str, windows: Sequence[tuple[np.ndarray, np.ndarray, Offsets]],
                  max_answer_len: int = 30, top_k: int = 20) -> dict[str, object]:
    """`{"answer", "start", "end", "score"}` of the best span over a question's windows (character offsets
    into `context`, end exclusive); an empty answer with score 0 when no window has a valid span."""
    best: tuple[Candidate, Offsets] | None = None
    for start_logits, end_logits, offsets in windows:
        candidate = best_in_window(start_logits, end_logits, offsets, max_answer_len, top_k)
        if candidate is not None and (best is None or candidate.score > best[0].score):
            best = (candidate, offsets)
    if best is None:
        return {"answer": "", "start": 0, "end": 0, "score": 0.0}
    candidate, offsets = best
    spans = offsets_array(offsets)
    start, end = int(spans[candidate.start, 0]), int(spans[candidate.end, 1])
    return {"answer": context[start:end], "start": start, "end": end, "score": candidate.score}
