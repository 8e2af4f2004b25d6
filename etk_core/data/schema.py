"""EasyTransfer-style schema strings: `"review:str:1,sentiment:str:1"` (name:type:count, comma-separated).

A schema names a source's columns in order. For header-less CSV/TSV files it supplies the column names (a
field with count k > 1 takes k consecutive fields and becomes a list); for sources with named columns it
must name existing columns. In both cases its types (str, int, float) convert the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etk_core.errors import ConfigError

_TYPES: dict[str, type] = {"str": str, "string": str, "int": int, "int32": int, "int64": int,
                           "float": float, "float32": float, "float64": float, "double": float}


@dataclass(frozen=True)
class Field:
    """One schema entry."""

    name: str
    type: type
    count: int = 1


def parse_schema(text: str) -> list[Field]:
    """Parse a schema string; a malformed one is a ConfigError saying which entry."""
    fields: list[Field] = []
    for entry in (part.strip() for part in text.split(",")):
        parts = entry.split(":")
        if not entry or len(parts) > 3 or not parts[0].strip():
            message = f"data.schema entry {entry!r} is not name:type:count; e.g. 'review:str:1,sentiment:str:1'"
            raise ConfigError(message)
        name = parts[0].strip()
        kind = parts[1].strip().lower() if len(parts) > 1 and parts[1].strip() else "str"
        if kind not in _TYPES:
            message = f"data.schema entry {entry!r}: unknown type {kind!r}; use str, int or float"
            raise ConfigError(message)
        count_text = parts[2].strip() if len(parts) > 2 else "1"
        if not count_text.isdigit() or int(count_text) < 1:
            message = f"data.schema entry {entry!r}: count must be a positive integer"
            raise ConfigError(message)
        if any(field.name == name for field in fields):
            message = f"data.schema names column {name!r} twice; give each column one name"
            raise ConfigError(message)
        fields.append(Field(name, _TYPES[kind], int(count_text)))
    return fields


def width(fields: list[Field]) -> int:
    """How many delimited fields a row of this schema has."""
    return sum(field.count for field in fields)


def group(fields: list[Field], values: list[str]) -> dict[str, Any]:
    """Name a header-less row's fields (len(values) must equal `width(fields)`)."""
    out: dict[str, Any] = {}
    position = 0
    for field in fields:
        chunk = values[position:position + field.count]
        out[field.name] = chunk[0] if field.count == 1 else chunk
        position += field.count
    return out


def convert(field: Field, value: Any) -> Any:
    """Convert a value (or each item of a list) to the field's type; ValueError names the bad value."""
    if field.type is str or value is None:
        return value
    if isinstance(value, list):
        return [convert(field, item) for item in value]
    if isinstance(value, str) and not value.strip():
        return None
    try:
        return field.type(value)
    except (TypeError, ValueError):
        message = f"column {field.name!r}: {value!r} is not {field.type.__name__}"
        raise ValueError(message) from None
