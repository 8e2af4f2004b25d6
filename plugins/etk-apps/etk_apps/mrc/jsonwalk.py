"""Walk a JSON document one container at a time, keeping the line where each value starts (C-speed parsing)."""

from __future__ import annotations

import bisect
import json
import re
from typing import Any

_SPACE = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


class JsonWalk:
    """Positions and values of a document's members and items; `line(pos)` gives 1-based lines."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [match.start() for match in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def skip(self, pos: int) -> int:
        return _SPACE.match(self.text, pos).end()  # type: ignore[union-attr]

    def _expect(self, pos: int, chars: str) -> str:
        if pos >= len(self.text) or self.text[pos] not in chars:
            raise json.JSONDecodeError(f"Expecting {' or '.join(repr(c) for c in chars)}", self.text, pos)
        return self.text[pos]

    def start(self) -> int:
        """Position of the document's first value."""
        return self.skip(0)

    def items(self, pos: int) -> list[tuple[Any, int]]:
        """(value, start) of each element of the array at `pos`."""
        self._expect(pos, "[")
        out: list[tuple[Any, int]] = []
        pos = self.skip(pos + 1)
        if self.text.startswith("]", pos):
            return out
        while True:
            value, end = _DECODER.raw_decode(self.text, pos)
            out.append((value, pos))
            pos = self.skip(end)
            if self._expect(pos, ",]") == "]":
                return out
            pos = self.skip(pos + 1)

    def members(self, pos: int) -> dict[str, tuple[Any, int]]:
        """key -> (value, start) of the object at `pos`."""
        self._expect(pos, "{")
        out: dict[str, tuple[Any, int]] = {}
        pos = self.skip(pos + 1)
        if self.text.startswith("}", pos):
            return out
        while True:
            self._expect(pos, '"')
            key, pos = _DECODER.raw_decode(self.text, pos)
            pos = self.skip(pos)
            self._expect(pos, ":")
            start = self.skip(pos + 1)
            value, end = _DECODER.raw_decode(self.text, start)
            out[key] = (value, start)
            pos = self.skip(end)
            if self._expect(pos, ",}") == "}":
                return out
            pos = self.skip(pos + 1)
