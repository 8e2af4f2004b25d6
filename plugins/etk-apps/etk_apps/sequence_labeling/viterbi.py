"""Viterbi decoding in numpy, batched over padded sequences, with BIO constraints as -inf scores.

A score table is what the models output under `transitions`: shape `[T + 2, T]`, rows `0..T-1` the transition
scores `from -> to`, row `T` the start scores and row `T + 1` the end scores (all zero for the softmax head).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def split_table(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(transitions [T, T], start [T], end [T])` of a `[T + 2, T]` score table."""
    import numpy as np

    table = np.asarray(table, dtype=np.float64)
    tags = table.shape[-1]
    if table.shape != (tags + 2, tags):
        raise ValueError(f"a score table has shape [T + 2, T], got {table.shape}")
    return table[:tags], table[tags], table[tags + 1]


def constrain(table: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table's `(transitions, start, end)` with -inf wherever BIO forbids the move (see `bio.allowed`)."""
    import numpy as np

    from etk_apps.sequence_labeling.bio import allowed

    transitions, start, end = split_table(table)
    start_ok, follows = allowed(labels)
    transitions = np.where(np.array(follows, dtype=bool), transitions, -np.inf)
    start = np.where(np.array(start_ok, dtype=bool), start, -np.inf)
    return transitions, start, end


def viterbi(emissions: np.ndarray, lengths: Sequence[int], transitions: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> list[list[int]]:
    """Best tag path of each sequence: `emissions [B, W, T]` padded, sequence b is `emissions[b, :lengths[b]]`.

    Maximises `start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_last]`. Past a
    sequence's end its scores are carried unchanged (identity back-pointers), so one pass serves all lengths.
    Ties go to the lower tag index. A zero-length sequence decodes to `[]`."""
    import numpy as np

    emissions = np.asarray(emissions, dtype=np.float64)
    batch, steps, tags = emissions.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    if batch == 0 or steps == 0:
        return [[] for _ in range(batch)]
    score = start[None, :] + emissions[:, 0]  # [B, T]
    pointers = np.empty((batch, steps, tags), dtype=np.int64)
    identity = np.broadcast_to(np.arange(tags), (batch, tags))
    for t in range(1, steps):
        candidates = score[:, :, None] + transitions[None, :, :]  # [B, from, to]
        best = candidates.argmax(axis=1)  # [B, to]
        stepped = np.take_along_axis(candidates, best[:, None, :], axis=1)[:, 0] + emissions[:, t]
        active = (t < lengths)[:, None]
        score = np.where(active, stepped, score)
        pointers[:, t] = np.where(active, best, identity)
    last = (score + end[None, :]).argmax(axis=1)
    paths = np.empty((batch, steps), dtype=np.int64)
    paths[:, -1] = last
    for t in range(steps - 1, 0, -1):
        paths[:, t - 1] = pointers[np.arange(batch), t, paths[:, t]]
    return [paths[b, : lengths[b]].tolist() for b in range(batch)]


def decode(word_emissions: Sequence[np.ndarray], table: np.ndarray, labels: Sequence[str],
           constrained: bool = True) -> list[list[int]]:
    """Tag ids of each sequence (`word_emissions[i]`: `[W_i, T]`) under the score `table`, BIO-constrained."""
    import numpy as np

    transitions, start, end = constrain(table, labels) if constrained else split_table(table)
    tags = len(labels)
    lengths = [len(rows) for rows in word_emissions]
    padded = np.zeros((len(word_emissions), max(lengths, default=0), tags), dtype=np.float64)
    for index, rows in enumerate(word_emissions):
        padded[index, : len(rows)] = rows
    return viterbi(padded, lengths, transitions, start, end)
