"""JSON documents (.json) in the shapes datasets use, each element reported with its line.

Accepted: an array of objects; `{"data": [objects]}`; an object of objects (`{"0": {...}, "1": {...}}`,
as in GLUE-derived QQP/MNLI subsets; the keys are dropped); a single object (one row); and JSON lines
saved with a .json suffix (an object followed by more objects).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from typing import Any

from etk_core.data.readers.files import no_rows, read_utf8
from etk_core.data.readers.jsonl import parse_lines, type_name
from etk_core.errors import DataError
from etk_core.interfaces import RawRow, Reader

_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


class JsonScanner:
    """Walks a JSON document one container level at a time, remembering where each value starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [match.start() for match in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def skip(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def expect(self, pos: int, chars: str) -> str:
        if pos >= len(self.text) or self.text[pos] not in chars:
            wanted = " or ".join(repr(char) for char in chars)
            raise json.JSONDecodeError(f"Expecting {wanted}", self.text, pos)
        return self.text[pos]

    def value(self, pos: int) -> tuple[Any, int]:
        return _DECODER.raw_decode(self.text, pos)

    def items(self, pos: int) -> tuple[list[tuple[Any, int]], int]:
        """The elements of the array at `pos` with their start positions, and the end position."""
        out: list[tuple[Any, int]] = []
        pos = self.skip(pos + 1)
        if self.text.startswith("]", pos):
            return out, pos + 1
        while True:
            value, end = self.value(pos)
            out.append((value, pos))
            pos = self.skip(end)
            if self.expect(pos, ",]") == "]":
                return out, pos + 1
            pos = self.skip(pos + 1)

    def members(self, pos: int) -> tuple[list[tuple[str, Any, int]], int]:
        """The members of the object at `pos` as (key, value, value start), and the end position."""
        out: list[tuple[str, Any, int]] = []
        pos = self.skip(pos + 1)
        if self.text.startswith("}", pos):
            return out, pos + 1
        while True:
            self.expect(pos, '"')
            key, pos = self.value(pos)
            pos = self.skip(pos)
            self.expect(pos, ":")
            start = self.skip(pos + 1)
            value, end = self.value(start)
            out.append((key, value, start))
            pos = self.skip(end)
            if self.expect(pos, ",}") == "}":
                return out, pos + 1
            pos = self.skip(pos + 1)


class JsonReader(Reader):
    """A JSON document holding a list of objects."""

    name = "json"
    description = "JSON array of objects, {\"data\": [...]}, object of objects, or JSON lines (.json)"
    suffixes = (".json",)

    def rows(self) -> Iterator[RawRow]:
        text = read_utf8(self.source)
        if not text.strip():
            raise no_rows(self.source)
        scanner = JsonScanner(text)
        try:
            elements = self._elements(scanner)
        except json.JSONDecodeError as exc:
            message = f"{self.source}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); fix the file"
            raise DataError(message) from None
        if elements is None:
            yield from parse_lines(self.source, enumerate(text.splitlines(), 1))
            return
        if not elements:
            raise no_rows(self.source, "the JSON holds no records")
        for value, pos in elements:
            where = f"{self.source}:{scanner.line(pos)}"
            if isinstance(value, dict):
                yield RawRow(value, where)
            else:
                yield RawRow(None, where, f"expected a JSON object, found {type_name(value)}")

    def _elements(self, scanner: JsonScanner) -> list[tuple[Any, int]] | None:
        """The record values with their positions, or None for JSON lines."""
        start = scanner.skip(0)
        if scanner.expect(start, "[{") == "[":
            elements, end = scanner.items(start)
            self._check_end(scanner, end)
            return elements
        members, end = scanner.members(start)
        if scanner.skip(end) < len(scanner.text):
            return None
        for key, value, pos in members:
            if key == "data" and isinstance(value, list):
                return scanner.items(pos)[0]
        if not members:
            return []
        if all(isinstance(value, dict) for _, value, _ in members):
            return [(value, pos) for _, value, pos in members]
        return [({key: value for key, value, _ in members}, start)]

    @staticmethod
    def _check_end(scanner: JsonScanner, end: int) -> None:
        pos = scanner.skip(end)
        if pos < len(scanner.text):
            raise json.JSONDecodeError("Extra data after the array", scanner.text, pos)
