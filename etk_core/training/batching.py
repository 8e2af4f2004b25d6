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


def grouped_batches(lengths: Sequence[int], groups: Sequence[object], batch_size: int, seed: int, epoch: int,
                    bucket: bool = True, mix: str = "round_robin") -> list[tuple[list[int], object]]:
    """The batches of one epoch when every batch must hold one group's examples (e.g. one domain's):
    each group batched like `train_batches`, then the groups take turns (`round_robin`, a group that runs
    out drops out) or their batches are shuffled together (`proportional`: each group's share of the steps
    is its share of the data). Returns (indices, group) pairs."""
    members: dict[object, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    per_group = []
    for number, (group, indices) in enumerate(sorted(members.items(), key=lambda item: str(item[0]))):
        local = train_batches([lengths[i] for i in indices], batch_size, seed + 7919 * (number + 1), epoch, bucket)
        per_group.append([([indices[i] for i in batch], group) for batch in local])
    if mix == "proportional":
        flat = [batch for batches in per_group for batch in batches]
        random.Random(seed * 100_003 + epoch + 1).shuffle(flat)
        return flat
    order: list[tuple[list[int], object]] = []
    for turn in range(max((len(batches) for batches in per_group), default=0)):
        order.extend(batches[turn] for batches in per_group if turn < len(batches))
    return order
