"""CSV and TSV readers (the `csv` module; TSV without quoting, as GLUE-style files contain bare quotes).

The first non-blank row is the header. With `options["schema"]` the file may be header-less: the schema
names the columns in order, and the first row is taken as a header only when it equals the schema's names.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

from etk_core.data.readers.files import no_rows, utf8_lines
from etk_core.data.schema import group, parse_schema, width
from etk_core.errors import DataError
from etk_core.interfaces import RawRow, Reader

#: The csv module refuses fields over 128 KiB by default; a long document in a field is data, not an error
#: (JSON lines read it), so the limit is the largest the platform's C long holds.
FIELD_SIZE_LIMIT = min(sys.maxsize, 2**31 - 1)


class _DelimitedReader(Reader):
    delimiter: ClassVar[str] = ","
    quoting: ClassVar[int] = csv.QUOTE_MINIMAL

    def rows(self) -> Iterator[RawRow]:
        fields = parse_schema(self.options["schema"]) if self.options.get("schema") else None
        lines = (line for _, line in utf8_lines(self.source))
        csv.field_size_limit(FIELD_SIZE_LIMIT)
        reader = csv.reader(lines, delimiter=self.delimiter, quoting=self.quoting, strict=False)
        header: list[str] | None = None
        seen = 0
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield RawRow(None, f"{self.source}:{start}", f"cannot parse the row ({exc})")
                continue
            if not values:
                continue
            where = f"{self.source}:{start}"
            if header is None:
                header = self._header(values, fields, where)
                if header is not None:
                    continue
                header = [field.name for field in fields or []]
            seen += 1
            yield self._row(values, header, fields, where)
        if seen == 0:
            raise no_rows(self.source, "the file has no data rows" if header else "the file is empty")

    def _header(self, values: list[str], fields: Any, where: str) -> list[str] | None:
        """The header names, or None when a schema names the columns and this row is data."""
        if fields is not None:
            names = [field.name for field in fields]
            return names if [value.strip().lower() for value in values] == [n.lower() for n in names] else None
        names = [value.strip() or f"column{index + 1}" for index, value in enumerate(values)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            message = f"{where}: the header names column {duplicates[0]!r} twice; rename one of them"
            raise DataError(message)
        return names

    def _row(self, values: list[str], header: list[str], fields: Any, where: str) -> RawRow:
        expected = width(fields) if fields is not None else len(header)
        if len(values) != expected:
            hint = " (a stray delimiter inside a field?)" if len(values) > expected else ""
            return RawRow(None, where, f"expected {expected} fields, found {len(values)}{hint}")
        if fields is not None:
            return RawRow(group(fields, values), where)
        return RawRow(dict(zip(header, values)), where)


class CsvReader(_DelimitedReader):
    """Comma-separated values with a header row."""

    name = "csv"
    description = "comma-separated file with a header row (or a data.schema naming the columns)"
    suffixes = (".csv",)


class TsvReader(_DelimitedReader):
    """Tab-separated values with a header row; quotes are ordinary characters."""

    name = "tsv"
    description = "tab-separated file (.tsv, .txt), no quoting, header row or data.schema"
    suffixes = (".tsv", ".txt")
    delimiter = "\t"
    quoting = csv.QUOTE_NONE
