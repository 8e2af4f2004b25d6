"""Configuration options: one key's type(s), default and help, and the conversion of values to its type.

A leaf module: it imports nothing from etk_core, so interfaces and plugins can use it without cycles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The type of `None`, for options that may be null: `Option((int, NONE), None, ...)`.
NONE = type(None)

_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


@dataclass(frozen=True)
class Option:
    """One configuration key: its type(s), default and a one-line help."""

    type: type | tuple[type, ...]
    default: Any
    help: str = ""

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_names(self) -> str:
        """The accepted types as a user reads them, e.g. `int or null`."""
        return " or ".join("null" if kind is NONE else kind.__name__ for kind in self.types)

    def coerce(self, value: Any) -> Any:
        """`value` checked against this option's types (strings from the command line are converted);
        a ValueError saying what was expected otherwise."""
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
