"""Configuration options: one key's type(s), default and help, and the conversion of values to its type.

A leaf module: it imports nothing from etk_core, so interfaces and plugins can use it without cycles.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The type of `None`, for options that may be null: `Option((int, NONE), None, ...)`.
NONE = type(None)

_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


@dataclass(frozen=True)
class Option:
    """One configuration key: its type(s), default, a one-line help and, for numbers, an optional range:
    `min`/`max` are inclusive bounds, `above`/`below` exclusive ones (e.g. `min=0, below=1` for a dropout).
    `path` marks a path value: "file" (an existing file), "folder" (an existing folder) or "output" (a folder
    that is created if missing: not a file, under a writable folder). Null passes every check."""

    type: type | tuple[type, ...]
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    path: str | None = None

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_names(self) -> str:
        """The accepted types as a user reads them, e.g. `int or null`."""
        return " or ".join("null" if kind is NONE else kind.__name__ for kind in self.types)

    def range_text(self) -> str:
        """The range as a user reads it, e.g. `>= 1` or `>= 0 and < 1`; empty without one."""
        parts = [f"{sign} {_number(bound)}" for sign, bound in
                 ((">=", self.min), (">", self.above), ("<=", self.max), ("<", self.below)) if bound is not None]
        return " and ".join(parts)

    def check_range(self, value: Any) -> None:
        """A ValueError when the number `value` is outside this option's range (or not finite)."""
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        inside = ((self.min is None or value >= self.min) and (self.max is None or value <= self.max)
                  and (self.above is None or value > self.above) and (self.below is None or value < self.below))
        if not inside:
            raise ValueError(f"must be {self.range_text()}, got {_number(value)}")

    def example(self) -> Any:
        """A valid value to suggest: the default, else the smallest one the range allows; None without one."""
        if self.default is not None:
            return self.default
        if self.min is not None:
            return self.min
        if self.above is not None and int in self.types:
            return math.floor(self.above) + 1
        return None

    def coerce(self, value: Any) -> Any:
        """`value` checked against this option's types (strings from the command line are converted) and
        range; a ValueError saying what was expected otherwise."""
        value = self._typed(value)
        self.check_range(value)
        if self.path and isinstance(value, str):
            check_path(value, self.path)
        return value

    def _typed(self, value: Any) -> Any:
        types = self.types
        if isinstance(value, str) and str not in types:
            converted = _from_text(value.strip(), types)
            if converted is not _NO_VALUE:
                return converted
        elif isinstance(value, str) and value.strip().lower() in ("null", "none") and NONE in types:
            return None
        if isinstance(value, bool) and bool not in types:
            pass  # bool is an int subclass; do not accept it silently
        elif isinstance(value, types):
            return value
        elif isinstance(value, int) and float in types:
            return float(value)
        raise ValueError(f"expected {self.type_names()}, got {value!r}")


_NO_VALUE = object()


def check_path(value: str, kind: str) -> None:
    """A ValueError when `value` is not a usable path of `kind` ("file", "folder" or "output")."""
    path = Path(value).expanduser()
    if not value.strip():
        raise ValueError("expected a path, got an empty string")
    if kind == "file" and not path.is_file():
        raise ValueError(f"{value} is a folder, not a file" if path.is_dir() else f"no file {value}; check the path")
    if kind == "folder" and not path.is_dir():
        raise ValueError(f"{value} is a file, not a folder" if path.exists() else f"no folder {value}; check the path")
    if kind == "output":
        if path.exists() and not path.is_dir():
            raise ValueError(f"{value} is a file, not a folder; choose another path")
        existing = next(parent for parent in (path, *path.absolute().parents) if parent.exists())
        if not existing.is_dir():
            raise ValueError(f"{value}: {existing} is a file, so no folder can be made there; choose another path")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"{value}: no permission to write in {existing}; choose another path")


def _number(value: float) -> str:
    """`1` rather than `1.0` for whole bounds; other numbers as Python writes them."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _from_text(text: str, types: tuple[type, ...]) -> Any:
    """Convert command-line text to the first of `types` it parses as, or `_NO_VALUE`."""
    if NONE in types and text.lower() in ("null", "none", "~", ""):
        return None
    for kind in types:
        try:
            if kind is bool:
                lowered = text.lower()
                if lowered in _TRUE:
                    return True
                if lowered in _FALSE:
                    return False
                continue
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
            if kind in (dict, list):
                parsed = json.loads(text)
                if isinstance(parsed, kind):
                    return parsed
        except ValueError:
            continue
    return _NO_VALUE
