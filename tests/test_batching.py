"""Length-bucketed batching: deterministic, complete, and far less padding than random batches."""

from __future__ import annotations

import random

from etk_core.training.batching import eval_batches, train_batches


def _padding(lengths, batches):
    return sum(max(lengths[i] for i in batch) * len(batch) - sum(lengths[i] for i in batch) for batch in batches)


def test_every_example_once_and_deterministic():
    lengths = [random.Random(1).randint(5, 300) for _ in range(1000)]
    batches = train_batches(lengths, 16, seed=3, epoch=0)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert batches == train_batches(lengths, 16, seed=3, epoch=0)
    assert batches != train_batches(lengths, 16, seed=3, epoch=1)


def test_bucketing_cuts_padding():
    rng = random.Random(0)
    lengths = [rng.randint(10, 512) for _ in range(2000)]
    bucketed = _padding(lengths, train_batches(lengths, 16, seed=0, epoch=0, bucket=True))
    plain = _padding(lengths, train_batches(lengths, 16, seed=0, epoch=0, bucket=False))
    assert bucketed < plain / 10


def test_eval_batches_cover_all_sorted():
    lengths = [5, 1, 4, 2, 3]
    batches = eval_batches(lengths, 2)
    assert [i for batch in batches for i in batch] == [1, 3, 4, 2, 0]
