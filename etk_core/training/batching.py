"""Length-bucketed batching: examples of similar length share a batch, so dynamic padding pads little."""

from __future__ import annotations

import random
from collections.abc import Sequence

#: Batches are formed inside windows of this many batches' worth of examples, then shuffled,
#: which keeps the order random enough for SGD while padding stays small.
BUCKET_WINDOW = 50


def train_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                  bucket: bool = True) -> list[list[int]]:
    """The batches (lists of example indices) of one training epoch, a pure function of seed and epoch."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if bucket:
        window = batch_size * BUCKET_WINDOW
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
            batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
        rng.shuffle(batches)
        return batches
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def eval_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches sorted by length (callers put the outputs back in input order)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
