"""Malformed input: every case is a one-line DataError naming the file and the line or row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from etk_core.data.load import load_records
from etk_core.errors import DataError

pytestmark = pytest.mark.usefixtures("builtins_only")


def _parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["fine", " ", "x"], "label": ["1", "0", "1"]}), path)


def _sqlite(path: Path, text: str | None = "ok") -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE reviews (id INTEGER PRIMARY KEY, text TEXT, label TEXT)")
        connection.executemany("INSERT INTO reviews VALUES (?, ?, ?)", [(1, "fine", "1"), (2, text, "0")])


# name -> (file name, content (str, bytes or a writer), options, required, substrings the message must hold)
CASES = {
    "csv wrong field count": ("bad.csv", "text,label\nok,1\na,b,c\n", {}, ("text",),
                              ["bad.csv:3", "expected 2 fields, found 3", "data.on_error=skip"]),
    "tsv stray tab": ("bad.tsv", "text\tlabel\nok\t1\nok\t1\nx\ty\t1\n", {}, ("text",), ["bad.tsv:4", "found 3"]),
    "jsonl unparsable line": ("bad.jsonl", '{"text": "a"}\n{"text": "b",\n', {}, ("text",),
                              ["bad.jsonl:2", "invalid JSON"]),
    "jsonl non-object line": ("bad.jsonl", '{"text": "a"}\n\n"just a string"\n', {}, ("text",),
                              ["bad.jsonl:3", "expected a JSON object, found a string"]),
    "json non-object element": ("bad.json", '[\n {"text": "a"},\n 42\n]\n', {}, ("text",),
                                ["bad.json:3", "found a number"]),
    "json syntax error": ("bad.json", '[\n {"text": "a"},\n {"text": }\n]\n', {}, ("text",),
                          ["bad.json:3", "invalid JSON"]),
    "empty file": ("empty.csv", "", {}, ("text",), ["empty.csv", "no rows"]),
    "header only": ("head.tsv", "text\tlabel\n", {}, ("text",), ["head.tsv", "no rows"]),
    "blank jsonl": ("blank.jsonl", "\n\n", {}, ("text",), ["blank.jsonl", "no rows"]),
    "not utf-8": ("latin.csv", "text\nok\ncaf\xe9\n".encode("latin-1"), {}, ("text",),
                  ["latin.csv:3", "not UTF-8 at line 3", "UTF-8"]),
    "not utf-8 json": ("latin.json", '[\n{"text": "ok"},\n{"text": "caf\xe9"}]'.encode("latin-1"), {}, ("text",),
                       ["latin.json:3", "not UTF-8 at line 3"]),
    "empty text": ("bad.csv", "text,label\nok,1\n   ,0\n", {}, ("text",), ["bad.csv:3", "empty text"]),
    "missing label value": ("bad.tsv", "sentence\tlabel\nok\t\n", {}, ("text", "label"),
                            ["bad.tsv:2", "missing label"]),
    "missing label column": ("nolabel.csv", "text,stars\nok,5\n", {}, ("text", "label"),
                             ["nolabel.csv", "no label column among: text, stars", "data.label"]),
    "configured column missing": ("cols.csv", "title,body\na,b\n", {"text": "review"}, ("text",),
                                  ["cols.csv", "'review'", "columns present: title, body"]),
    "no text column": ("cols.jsonl", '{"title": "a", "stars": 1}\n', {}, ("text",),
                       ["cols.jsonl", "no text column among: title, stars"]),
    "later row lacks column": ("rows.jsonl", '{"text": "a", "label": "1"}\n{"label": "0"}\n', {}, ("text",),
                               ["rows.jsonl:2", "missing column 'text'"]),
    "schema type": ("typed.csv", "x,1\ny,two\n", {"schema": "text:str:1,n:int:1"}, ("text",),
                    ["typed.csv:2", "'two' is not int"]),
    "duplicate header": ("dup.csv", "text,text\na,b\n", {}, ("text",), ["dup.csv:1", "twice"]),
    "unknown suffix": ("data.xlsx", "text\nok\n", {}, ("text",), ["data.xlsx", "unknown file type '.xlsx'", ".csv"]),
    "parquet empty text": ("bad.parquet", _parquet, {}, ("text",), ["bad.parquet row 2", "empty text"]),
    "not parquet": ("fake.parquet", "text\nok\n", {}, ("text",), ["fake.parquet", "not a readable Parquet"]),
    "sql null text": ("bad.db", lambda p: _sqlite(p, None), {"table": "reviews"}, ("text",),
                      ["bad.db table reviews row 2", "empty text"]),
    "sql missing table": ("ok.db", _sqlite, {"table": "nope"}, ("text",),
                          ["ok.db", "no table 'nope'", "tables present: reviews"]),
    "not a database": ("junk.db", "this is not sqlite\n" * 20, {"table": "t"}, ("text",),
                       ["junk.db", "cannot read the database"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_is_a_one_line_data_error(tmp_path: Path, case: str):
    name, content, options, required, expected = CASES[case]
    path = tmp_path / name
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_records(str(path), options, required=required)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize(("spec", "expected"), [
    ("missing/train.csv", "missing/train.csv: file not found"),
    ("train.tsv", "train.tsv: file not found"),
    ("sqlite:///nowhere/none.db#t", "database file nowhere/none.db not found"),
    ("synthetic_sentiment:validation", "dataset synthetic_sentiment has no split 'validation'; splits: train, dev"),
    ("nosuchdb://host/x", "cannot"),
])
def test_bad_specs(spec: str, expected: str):
    with pytest.raises(DataError) as info:
        load_records(spec, {})
    assert "\n" not in str(info.value) and expected in str(info.value)
