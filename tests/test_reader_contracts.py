"""The built-in readers pass the contract a third-party reader would (etk_core.testing.ReaderContract)."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import ClassVar

from etk_core.testing import ReaderContract


class TestCsvReader(ReaderContract):
    component_name = "csv"

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A CSV file with a header, written by the csv module (quoting where needed)."""
        path = folder / "rows.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return str(path)

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """Line 3 has a field too many."""
        path = folder / "bad.csv"
        path.write_text("text,label\nfine,pos\ndull,neg,extra\nok,pos\n", encoding="utf-8")
        return str(path), 3


class TestTsvReader(ReaderContract):
    component_name = "tsv"
    suffix: ClassVar[str] = ".tsv"

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A TSV file with a header; quotes stay ordinary characters."""
        path = folder / f"rows{self.suffix}"
        lines = ["\t".join(rows[0]), *("\t".join(row.values()) for row in rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """Line 4 has a stray tab."""
        path = folder / f"bad{self.suffix}"
        path.write_text("text\tlabel\nfine\tpos\nok\tneg\ndull\tplot\tneg\n", encoding="utf-8")
        return str(path), 4


class TestTsvReaderTxt(TestTsvReader):
    """A .txt TSV file goes to the TSV reader, not to a reader that sniffs .txt files (CoNLL)."""

    suffix = ".txt"


class TestJsonlReader(ReaderContract):
    component_name = "jsonl"

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """One JSON object a line, with a blank line inside."""
        path = folder / "rows.jsonl"
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        path.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n", encoding="utf-8")
        return str(path)

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """Line 2 is not JSON."""
        path = folder / "bad.ndjson"
        path.write_text('{"text": "a", "label": "pos"}\n{oops\n{"text": "b", "label": "neg"}\n', encoding="utf-8")
        return str(path), 2


class TestJsonReader(ReaderContract):
    component_name = "json"

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A JSON array of indented objects."""
        path = folder / "rows.json"
        path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
        return str(path)

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """The array element on line 3 is a string, not an object."""
        path = folder / "bad.json"
        path.write_text('[\n{"text": "a", "label": "pos"},\n"oops",\n{"text": "b", "label": "neg"}\n]\n',
                        encoding="utf-8")
        return str(path), 3


class TestParquetReader(ReaderContract):
    component_name = "parquet"

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A Parquet file in row groups of two rows, read in batches of two."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "rows.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
        return str(path)

    def test_rows_in_order_across_batches(self, tmp_path: Path, monkeypatch) -> None:
        """Rows stay in order and numbered when the file is read in several small batches."""
        from etk_core.data.readers import parquet

        monkeypatch.setattr(parquet, "BATCH_ROWS", 2)
        source = self.write_source(tmp_path, self.sample_rows())
        rows = list(self.reader(source).rows())
        assert [row.values for row in rows] == self.sample_rows()
        assert [row.where for row in rows] == [f"{source} row {n}" for n in range(1, len(rows) + 1)]


class TestSqlReader(ReaderContract):
    component_name = "sql"

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A SQLite file with the rows (inserted in reverse key order) and a second table, chosen by #rows."""
        path = folder / "rows.db"
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, text TEXT, label TEXT)")
            connection.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, text TEXT)")
            numbered = [(index + 1, row["text"], row["label"]) for index, row in enumerate(rows)]
            connection.executemany("INSERT INTO rows VALUES (?, ?, ?)", reversed(numbered))
            connection.execute("INSERT INTO other VALUES (1, 'not this table')")
        connection.close()
        return f"{path}#rows"


class TestSqlReaderUrl(TestSqlReader):
    """The same table through a SQLAlchemy URL and `data.table`."""

    reader_options = {"table": "rows"}

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A sqlite:/// URL of the database file."""
        return f"sqlite:///{super().write_source(folder, rows).partition('#')[0]}"
