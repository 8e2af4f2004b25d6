"""Walk a JSON document one container at a time, keeping the line where each value starts (C-speed parsing)."""

from __future__ import annotations

from typing import Any

from etk_core.data.readers.jsonfile import JsonScanner


class JsonWalk:
    """Positions and values of a document's members and items; `line(pos)` gives 1-based lines.

    A thin view over the core JSON reader's scanner that checks the container type at `pos`.
    """

    def __init__(self, text: str) -> None:
        self.scanner = JsonScanner(text)

    def line(self, pos: int) -> int:
        return self.scanner.line(pos)

    def start(self) -> int:
        """Position of the document's first value."""
        return self.scanner.skip(0)

    def items(self, pos: int) -> list[tuple[Any, int]]:
        """(value, start) of each element of the array at `pos`."""
        self.scanner.expect(pos, "[")
        return self.scanner.items(pos)[0]

    def members(self, pos: int) -> dict[str, tuple[Any, int]]:
        """key -> (value, start) of the object at `pos`."""
        self.scanner.expect(pos, "{")
        return {key: (value, start) for key, value, start in self.scanner.members(pos)[0]}
