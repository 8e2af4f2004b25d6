"""BIO (IOB2) tags: parsing, the tag set, entity spans (conlleval rules) and the allowed transitions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

OUTSIDE = "O"
_TAG = re.compile(r"^([BI])-(\S+)$")


def parse_tag(tag: str) -> tuple[str, str | None]:
    """`"O"` -> `("O", None)`, `"B-PER"` -> `("B", "PER")`; anything else is a ValueError."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    match = _TAG.match(tag)
    if match is None:
        raise ValueError(f"{tag!r} is not a BIO tag (O, B-TYPE or I-TYPE)")
    return match.group(1), match.group(2)


def tag_set(tags: Iterable[str]) -> list[str]:
    """The label list for a collection of BIO tags: `O`, then `B-`/`I-` of every type seen, types sorted.

    Both prefixes are added for every type, so a type seen only as `B-X` in training still accepts `I-X`."""
    types = {kind for prefix, kind in map(parse_tag, tags) if kind is not None}
    return [OUTSIDE, *(f"{prefix}-{kind}" for kind in sorted(types) for prefix in ("B", "I"))]


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity spans `(type, start, end)` (word indices, end exclusive) as conlleval reads them.

    An entity starts at `B-X`, or at an `I-X` that does not continue an entity of type X (lenient reading
    of IOB1-style or invalid input); it ends before `O`, `B-` or a tag of another type."""
    spans: list[tuple[str, int, int]] = []
    kind: str | None = None
    start = 0
    for index, tag in enumerate(tags):
        prefix, tag_kind = parse_tag(tag)
        continues = prefix == "I" and tag_kind == kind
        if kind is not None and not continues:
            spans.append((kind, start, index))
            kind = None
        if prefix != OUTSIDE and not continues:
            kind, start = tag_kind, index
    if kind is not None:
        spans.append((kind, start, len(tags)))
    return spans


def allowed(labels: Sequence[str]) -> tuple[list[bool], list[list[bool]]]:
    """Which tags may start a sequence, and `ok[i][j]`: whether tag j may follow tag i.

    `I-X` may only follow `B-X` or `I-X` and never starts a sequence; everything else is free."""
    parsed = [parse_tag(label) for label in labels]
    start = [prefix != "I" for prefix, _ in parsed]
    follows = [[prefix != "I" or (before_kind == kind and before_prefix != OUTSIDE)
                for prefix, kind in parsed] for before_prefix, before_kind in parsed]
    return start, follows


def is_valid(tags: Sequence[str]) -> bool:
    """Whether a tag sequence is valid IOB2 (no `I-X` at the start or after `O` or another type)."""
    previous: tuple[str, str | None] = (OUTSIDE, None)
    for tag in tags:
        prefix, kind = parse_tag(tag)
        if prefix == "I" and (previous[0] == OUTSIDE or previous[1] != kind):
            return False
        previous = (prefix, kind)
    return True
