"""Deterministic splits: seeded shuffles, per-label (stratified) cuts, split checks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from etk_core.errors import DataError
from etk_core.interfaces import Record

T = TypeVar("T")


def shuffled(items: Sequence[T], seed: int = 0) -> list[T]:
    """A copy of `items` in a seeded random order."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def cut(items: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """Consecutive slices of the given sizes."""
    out, start = [], 0
    for size in sizes:
        out.append(list(items[start:start + size]))
        start += size
    return out


def stratified(records: Sequence[Record], fractions: dict[str, float], key: str = "label",
               seed: int = 0) -> dict[str, list[Record]]:
    """Split each label group by `fractions` (the last split takes the rest), then shuffle each split."""
    names = list(fractions)
    out: dict[str, list[Record]] = {name: [] for name in names}
    groups: dict[Any, list[Record]] = {}
    for record in records:
        groups.setdefault(record.get(key), []).append(record)
    for value in sorted(groups, key=str):
        group = shuffled(groups[value], seed)
        sizes = [round(len(group) * fractions[name]) for name in names[:-1]]
        sizes.append(len(group) - sum(sizes))
        for name, part in zip(names, cut(group, sizes)):
            out[name].extend(part)
    return {name: shuffled(part, seed) for name, part in out.items()}


def check_split(dataset: str, split: str, splits: Sequence[str]) -> None:
    """A DataError for a split the dataset does not have."""
    if split not in splits:
        message = f"dataset {dataset} has no split {split!r}; splits: {', '.join(splits)}"
        raise DataError(message)


def copies(records: Sequence[Record]) -> list[Record]:
    """Shallow copies, so callers may change records without touching a cache."""
    return [dict(record) for record in records]
