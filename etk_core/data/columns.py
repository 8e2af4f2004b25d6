"""Map a source's columns to the canonical record keys `text`, `text_pair`, `label`, `domain`, and the
sequence keys `tokens` and `tags` (sequence labeling: a list of words and one tag per word).

Resolution, once per source from its first row: an explicit `options["text"]` (etc.) wins; otherwise the
first column, in `ALIASES` order, whose name matches an alias (exactly, then ignoring case). A schema
(`options["schema"]`, see `etk_core.data.schema`) names the columns and types; its names then go through
the same aliases (`review:str:1,sentiment:str:1` maps review -> text, sentiment -> label). Keys that the
caller requires choose their columns first, so a sequence-labeling source whose tags column is `labels` maps
it to `tags` while every other source keeps `labels` -> `label`.

A record keeps every original column under its own name, the canonical keys (which win over an original
column of the same name) and `_where`. Labels and domains become stripped strings (1 -> "1", 1.0 -> "1",
True -> "1"); an empty or null label, domain or text_pair is None, which counts as missing when that key is
required. An empty `text` always makes the row malformed.

`tokens`/`tags`: a JSON list (items become strings) or a whitespace-separated string. When they are required
the row is malformed unless both are non-empty lists of equal length; otherwise only lists are normalised and
other values are kept as they are. Without a text column, `text` is the tokens joined by single spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from etk_core.data.schema import Field, convert, parse_schema
from etk_core.errors import DataError
from etk_core.interfaces import Record

CANONICAL = ("text", "text_pair", "label", "domain", "tokens", "tags")
#: Canonical keys whose values are sequences (one item per word).
SEQUENCES = ("tokens", "tags")

ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "sentence1", "question1", "text_a", "review", "review_text", "content",
             "premise", "query", "question"),
    "text_pair": ("text_pair", "sentence2", "question2", "hypothesis", "text_b", "context", "passage"),
    "label": ("label", "labels", "gold_label", "sentiment", "is_duplicate", "class", "y"),
    "domain": ("domain", "genre"),
    "tokens": ("tokens", "words"),
    "tags": ("tags", "ner_tags", "ner", "labels", "label"),
}


class MalformedRow(Exception):
    """A row that cannot become a record; the message is the reason."""


def _find(columns: Sequence[str], aliases: tuple[str, ...], taken: set[str]) -> str | None:
    free = [column for column in columns if column not in taken]
    for alias in aliases:
        if alias in free:
            return alias
    lowered = {column.lower(): column for column in reversed(free)}
    return next((lowered[alias] for alias in aliases if alias in lowered), None)


@dataclass
class ColumnMap:
    """Which source column feeds each canonical key, and the schema types to apply."""

    source: str
    mapping: dict[str, str]
    types: dict[str, Field] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def record(self, values: dict[str, Any], where: str) -> Record:
        """The canonical record of one row; MalformedRow says why it cannot be one."""
        record: Record = {}
        for column, value in values.items():
            typed = self.types.get(column)
            try:
                record[column] = convert(typed, value) if typed else value
            except ValueError as exc:
                raise MalformedRow(str(exc)) from None
        for key, column in self.mapping.items():
            if column not in values:
                raise MalformedRow(f"missing column {column!r}")
            if key in SEQUENCES:
                record[key] = _sequence(key, record[column], strict=key in self.required)
            else:
                record[key] = _normalise(key, record[column])
        if "text" not in self.mapping and "tokens" in self.mapping:
            tokens = record["tokens"]
            record["text"] = _normalise("text", " ".join(map(str, tokens)) if isinstance(tokens, list) else tokens)
        if "tokens" in self.required and "tags" in self.required:
            tokens, tags = record.get("tokens"), record.get("tags")
            if isinstance(tokens, list) and isinstance(tags, list) and len(tokens) != len(tags):
                raise MalformedRow(f"{len(tokens)} tokens but {len(tags)} tags; give one tag per token")
        record["_where"] = where
        record["_columns"] = list(values)  # the row's own columns, for output that echoes the input
        return record


def _sequence(key: str, value: Any, strict: bool) -> Any:
    """A list of strings from a list or a whitespace-separated string (strict), or lists only (lenient)."""
    if isinstance(value, list):
        if any(isinstance(item, (list, dict)) or item is None for item in value):
            if strict:
                raise MalformedRow(f"{key} must be a list of strings, found a nested value or null")
            return value
        items = [str(item) for item in value]
    elif not strict:
        return value
    elif isinstance(value, str):
        items = value.split()
    elif value is None:
        return None
    else:
        raise MalformedRow(f"{key} is a {type(value).__name__}, expected a list of strings")
    if strict and not items:
        raise MalformedRow(f"empty {key}")
    return items


def _normalise(key: str, value: Any) -> Any:
    if key in ("text", "text_pair"):
        if isinstance(value, (list, dict)):
            raise MalformedRow(f"{key} is a {type(value).__name__}, expected a string")
        text = "" if value is None else str(value)
        if text.strip():
            return text
        if key == "text":
            raise MalformedRow("empty text")
        return None
    if value is None:
        return None
    if isinstance(value, bool):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def resolve_columns(source: str, columns: Sequence[str], options: dict[str, Any],
                    required: Sequence[str] = ("text",)) -> ColumnMap:
    """Decide the column of each canonical key; a configured or required column that is absent is a DataError."""
    columns = list(columns)
    shown = ", ".join(columns) or "none"
    types: dict[str, Field] = {}
    if options.get("schema"):
        fields = parse_schema(options["schema"])
        missing = [f.name for f in fields if f.name not in columns]
        if missing:
            message = f"{source}: data.schema names column {missing[0]!r}, which is absent; columns: {shown}"
            raise DataError(message)
        types = {f.name: f for f in fields}
    mapping: dict[str, str] = {}
    for key in CANONICAL:
        explicit = options.get(key)
        if explicit:
            if explicit not in columns:
                message = f"{source}: no column {explicit!r} (set by data.{key}); columns present: {shown}"
                raise DataError(message)
            mapping[key] = explicit
    # keys the caller requires choose first (their aliases may overlap: tags <- labels, label <- labels)
    order = [key for key in required if key in CANONICAL] + [key for key in CANONICAL if key not in required]
    for key in order:
        if key not in mapping:
            found = _find(columns, ALIASES[key], set(mapping.values()))
            if found is not None:
                mapping[key] = found
    # without a text column, the text is the tokens joined by spaces
    needed = [key for key in ("text", *required) if key != "text" or "tokens" not in mapping]
    for key in needed:
        if key in CANONICAL and key not in mapping:
            message = f"{source}: no {key} column among: {shown}; name it with --set data.{key}=COLUMN"
            raise DataError(message)
    return ColumnMap(source, mapping, types, tuple(key for key in required if key in SEQUENCES))
