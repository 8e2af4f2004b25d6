"""JSON lines: one JSON object per line; blank lines are ignored."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from etk_core.data.readers.files import no_rows, utf8_lines
from etk_core.interfaces import RawRow, Reader


def parse_lines(source: str, lines: Iterable[tuple[int, str]]) -> Iterator[RawRow]:
    """Rows from numbered lines of JSON; a bad line becomes an error row."""
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRow(None, where, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if isinstance(value, dict):
            yield RawRow(value, where)
        else:
            yield RawRow(None, where, f"expected a JSON object, found {type_name(value)}")


def type_name(value: object) -> str:
    """JSON's name for a decoded value's type."""
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class JsonlReader(Reader):
    """One JSON object per line."""

    name = "jsonl"
    description = "JSON lines: one object per line (.jsonl, .ndjson)"
    suffixes = (".jsonl", ".ndjson")

    def rows(self) -> Iterator[RawRow]:
        seen = False
        for row in parse_lines(self.source, utf8_lines(self.source)):
            seen = True
            yield row
        if not seen:
            raise no_rows(self.source)
