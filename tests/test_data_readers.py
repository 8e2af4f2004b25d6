"""Each built-in reader reads a small file it writes; JSON shapes; SQL tables through SQLAlchemy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from etk_core.data.readers import (
    BUILTIN_READERS,
    CsvReader,
    JsonlReader,
    JsonReader,
    ParquetReader,
    SqlReader,
    TsvReader,
)
from etk_core.errors import DataError

ROWS = [{"text": "fine film", "label": "1"}, {"text": "dull plot", "label": "0"}]


def _values(reader) -> list[dict]:
    return [row.values for row in reader.rows()]


def test_every_reader_has_name_description_and_unique_name():
    names = [reader.name for reader in BUILTIN_READERS]
    assert names == ["csv", "tsv", "jsonl", "json", "parquet", "sql"]
    for reader in BUILTIN_READERS:
        assert reader.description and "\n" not in reader.description


def test_csv_reads_quoted_fields_and_multiline_rows(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\n"fine, film",1\n"two\nlines",0\n\nlast,1\n', encoding="utf-8")
    rows = list(CsvReader(str(path), {}).rows())
    assert [row.values for row in rows] == [{"text": "fine, film", "label": "1"},
                                            {"text": "two\nlines", "label": "0"}, {"text": "last", "label": "1"}]
    assert [row.where for row in rows] == [f"{path}:2", f"{path}:3", f"{path}:6"]


def test_tsv_keeps_quotes_and_reads_txt(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text('sentence\tlabel\nhe said "great" \t1\r\n', encoding="utf-8")
    assert TsvReader.accepts(str(path)) and not CsvReader.accepts(str(path))
    assert _values(TsvReader(str(path), {})) == [{"sentence": 'he said "great" ', "label": "1"}]


def test_csv_wrong_field_count_is_an_error_row(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_text("text,label\na,1\nb,1,extra\n", encoding="utf-8")
    rows = list(CsvReader(str(path), {}).rows())
    assert rows[1].values is None and rows[1].where == f"{path}:3" and "expected 2 fields, found 3" in rows[1].error


def test_bom_is_dropped(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_bytes("\ufefftext,label\nx,1\n".encode())
    assert _values(CsvReader(str(path), {})) == [{"text": "x", "label": "1"}]


def test_jsonl_skips_blank_lines_and_reports_bad_lines(tmp_path: Path):
    path = tmp_path / "a.ndjson"
    path.write_text('{"text": "a", "label": 1}\n\n{oops\n[1, 2]\n', encoding="utf-8")
    rows = list(JsonlReader(str(path), {}).rows())
    assert rows[0].values == {"text": "a", "label": 1}
    assert rows[1].where.endswith(":3") and "invalid JSON" in rows[1].error
    assert rows[2].where.endswith(":4") and "expected a JSON object, found an array" in rows[2].error


@pytest.mark.parametrize("document", [
    json.dumps(ROWS, indent=2),
    json.dumps({"data": ROWS, "version": 1}, indent=2),
    json.dumps({"0": ROWS[0], "1": ROWS[1]}, indent=4),
    "\n".join(json.dumps(row) for row in ROWS),
])
def test_json_shapes(tmp_path: Path, document: str):
    path = tmp_path / "a.json"
    path.write_text(document, encoding="utf-8")
    rows = list(JsonReader(str(path), {}).rows())
    assert [row.values for row in rows] == ROWS
    lines = [int(row.where.rsplit(":", 1)[1]) for row in rows]
    text_lines = document.splitlines()
    for row, line in zip(rows, lines):
        assert row.values["text"] in "\n".join(text_lines[line - 1:line + 3])


def test_json_single_object_is_one_row(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text('{"text": "only", "label": "1"}', encoding="utf-8")
    assert _values(JsonReader(str(path), {})) == [{"text": "only", "label": "1"}]


def test_parquet_reads_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from etk_core.data.readers import parquet

    monkeypatch.setattr(parquet, "BATCH_ROWS", 2)
    path = tmp_path / "a.parquet"
    table = pa.table({"text": [f"t{i}" for i in range(5)], "label": [i % 2 for i in range(5)]})
    pq.write_table(table, path, row_group_size=2)
    rows = list(ParquetReader(str(path), {}).rows())
    assert [row.values["text"] for row in rows] == ["t0", "t1", "t2", "t3", "t4"]
    assert rows[4].where == f"{path} row 5"


def _sqlite(path: Path, tables: dict[str, list[tuple]]) -> None:
    with sqlite3.connect(path) as connection:
        for table, rows in tables.items():
            connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, review TEXT, sentiment TEXT)")
            connection.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", rows)


def test_sql_accepts_urls_and_sqlite_files():
    assert SqlReader.accepts("sqlite:///x.db") and SqlReader.accepts("postgresql://h/db")
    assert SqlReader.accepts("data.sqlite3#reviews") and SqlReader.accepts("x.DB")
    assert not SqlReader.accepts("x.csv")


@pytest.mark.parametrize("form", ["option", "fragment", "url", "only-table"])
def test_sql_reads_a_table_in_key_order(tmp_path: Path, form: str):
    path = tmp_path / "a.db"
    tables = {"reviews": [(2, "bad", "neg"), (1, "good", "pos")]}
    if form != "only-table":
        tables["other"] = [(1, "x", "y")]
    _sqlite(path, tables)
    source, options = {"option": (str(path), {"table": "reviews"}), "fragment": (f"{path}#reviews", {}),
                       "url": (f"sqlite:///{path}", {"table": "reviews"}), "only-table": (str(path), {})}[form]
    rows = list(SqlReader(source, options).rows())
    assert [row.values["review"] for row in rows] == ["good", "bad"]
    assert rows[1].where.endswith("table reviews row 2")


def test_sql_missing_table_lists_tables(tmp_path: Path):
    path = tmp_path / "a.db"
    _sqlite(path, {"reviews": [(1, "good", "pos")], "users": []})
    with pytest.raises(DataError, match=r"no table 'nope'; tables present: reviews, users"):
        list(SqlReader(str(path), {"table": "nope"}).rows())
    with pytest.raises(DataError, match="which table"):
        list(SqlReader(str(path), {}).rows())


def test_sql_missing_database_file(tmp_path: Path):
    with pytest.raises(DataError, match="not found"):
        list(SqlReader(f"sqlite:///{tmp_path}/none.db", {"table": "t"}).rows())
    assert not (tmp_path / "none.db").exists()
