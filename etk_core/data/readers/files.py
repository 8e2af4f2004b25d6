"""File helpers shared by the file readers: existence checks and strict UTF-8 decoding with line numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from etk_core.errors import DataError


def require_file(source: str) -> Path:
    """The path of an existing file, or a DataError saying what is wrong."""
    path = Path(source)
    if path.is_dir():
        message = f"{source} is a folder, not a file; give the path of a data file"
        raise DataError(message)
    if not path.is_file():
        message = f"{source}: file not found; check the path"
        raise DataError(message)
    return path


def not_utf8(source: str, line: int) -> DataError:
    """The error for undecodable bytes at a line."""
    message = f"{source}:{line}: not UTF-8 at line {line}; re-save the file as UTF-8"
    return DataError(message)


def no_rows(source: str, what: str = "the file is empty") -> DataError:
    """The error for a source without any rows."""
    message = f"{source}: no rows; {what}, add a header and at least one row"
    return DataError(message)


def utf8_lines(source: str) -> Iterator[tuple[int, str]]:
    """Yield `(line number, line)` with line endings kept, decoding strictly; a leading BOM is dropped."""
    path = require_file(source)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise not_utf8(source, number) from None
            yield number, line.removeprefix("\ufeff") if number == 1 else line


def read_utf8(source: str) -> str:
    """The whole file as text, decoding strictly; a leading BOM is dropped."""
    raw = require_file(source).read_bytes()
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise not_utf8(source, raw.count(b"\n", 0, exc.start) + 1) from None
