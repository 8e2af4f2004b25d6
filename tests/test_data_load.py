"""load_records: column mapping, schemas, sharding, on_error=skip, max_rows, source resolution."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from etk_core.data.load import load_records
from etk_core.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("builtins_only")


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("header", "expected"), [
    ("sentence\tlabel", {"text": "a", "label": "b"}),
    ("question1\tquestion2\tis_duplicate", {"text": "a", "text_pair": "b"}),
    ("premise\thypothesis\tgold_label\tgenre", {"text": "a", "text_pair": "b", "label": "c", "domain": "d"}),
    ("Review_Text\tSentiment", {"text": "a", "label": "b"}),
    ("text_a\ttext_b\tlabel", {"text": "a", "text_pair": "b", "label": "c"}),
    ("question\tcontext", {"text": "a", "text_pair": "b"}),
])
def test_aliases(tmp_path: Path, header: str, expected: dict):
    values = "\t".join("abcd"[: len(header.split("\t"))])
    records = load_records(_write(tmp_path / "a.tsv", f"{header}\n{values}\n"), {})
    for key, value in expected.items():
        assert records[0][key] == value
    for column, value in zip(header.split("\t"), values.split("\t")):
        assert records[0][column] == value


def test_explicit_mapping_wins_and_keeps_original_columns(tmp_path: Path):
    path = _write(tmp_path / "a.csv", "text,body,stars\nignored,real text,5\n")
    record = load_records(path, {"text": "body", "label": "stars"}, required=("text", "label"))[0]
    assert record == {"text": "real text", "body": "real text", "stars": "5", "label": "5", "_where": f"{path}:2",
                      "_columns": ["text", "body", "stars"]}


def test_label_values_become_strings(tmp_path: Path):
    path = _write(tmp_path / "a.jsonl",
                  '{"text": "a", "label": 1}\n{"text": "b", "label": 0.0}\n{"text": "c", "label": true}\n'
                  '{"text": "d", "label": " pos "}\n{"text": "e", "label": null}\n')
    assert [r["label"] for r in load_records(path, {})] == ["1", "0", "1", "pos", None]


def test_schema_names_headerless_columns_and_types(tmp_path: Path):
    path = _write(tmp_path / "a.tsv", "good book\t4\t1\nbad book\t1\t0\n")
    records = load_records(path, {"schema": "review:str:1,stars:int:1,sentiment:str:1"}, required=("label",))
    assert [(r["text"], r["stars"], r["label"]) for r in records] == [("good book", 4, "1"), ("bad book", 1, "0")]
    assert records[0]["_where"] == f"{path}:1"


def test_schema_header_row_equal_to_names_is_skipped(tmp_path: Path):
    path = _write(tmp_path / "a.csv", "review,sentiment\nnice,pos\n")
    records = load_records(path, {"schema": "review:str:1,sentiment:str:1"})
    assert [(r["text"], r["label"]) for r in records] == [("nice", "pos")]


def test_schema_count_groups_fields(tmp_path: Path):
    path = _write(tmp_path / "a.csv", "hello,0.5,0.25,yes\n")
    record = load_records(path, {"schema": "content:str:1,vec:float:2,y:str:1"})[0]
    assert record["vec"] == [0.5, 0.25] and record["label"] == "yes"


def test_schema_over_named_columns(tmp_path: Path):
    path = _write(tmp_path / "a.jsonl", '{"content": "x", "n": "7"}\n')
    assert load_records(path, {"schema": "content:str:1,n:int:1"})[0]["n"] == 7
    with pytest.raises(DataError, match="data.schema names column 'm', which is absent; columns: content, n"):
        load_records(path, {"schema": "m:int:1"})


@pytest.mark.parametrize("schema", ["a:str:1,a:int:1", "a:blob:1", "a:str:0", ":str:1", "a:str:1:2"])
def test_bad_schema_is_a_config_error(tmp_path: Path, schema: str):
    with pytest.raises(ConfigError):
        load_records(_write(tmp_path / "a.csv", "a\nx\n"), {"schema": schema})


def _ids(records: list[dict]) -> list[str]:
    return [record["_where"] for record in records]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 7])
def test_sharding_partitions_files_tables_and_datasets(tmp_path: Path, world_size: int):
    csv_path = _write(tmp_path / "a.csv", "text\n" + "".join(f"row {i}\n" for i in range(23)))
    db = tmp_path / "a.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(23)])
    for spec, options in ((csv_path, {}), (str(db), {"table": "t"}), ("synthetic_sentiment:dev", {})):
        full = _ids(load_records(spec, options))
        shards = [_ids(load_records(spec, options, rank=rank, world_size=world_size)) for rank in range(world_size)]
        assert sorted(sum(shards, [])) == sorted(full)
        assert len(set(sum(shards, []))) == len(full)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        assert shards[0][0] == full[0]


def test_bad_rank_is_a_programming_error(tmp_path: Path):
    with pytest.raises(ValueError):
        load_records("synthetic_sentiment", {}, rank=2, world_size=2)


def test_on_error_skip_counts_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = _write(tmp_path / "a.csv", "text,label\nok,1\n,1\nalso ok,0\nno label,\nthree,fields,here\nfine,1\n")
    with caplog.at_level(logging.WARNING, logger="etk.data"):
        records = load_records(path, {"on_error": "skip"}, required=("text", "label"))
    assert [r["text"] for r in records] == ["ok", "also ok", "fine"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "etk.data"]
    assert warnings == [f"skipped 3 malformed rows in {path} (first: {path}:3: empty text)"]


def test_on_error_skip_with_nothing_usable_is_an_error(tmp_path: Path):
    path = _write(tmp_path / "a.csv", "text,label\n,1\n")
    with pytest.raises(DataError, match=r"no usable records; all 1 rows are malformed"):
        load_records(path, {"on_error": "skip"})


def test_max_rows_caps_records_and_stops_reading(tmp_path: Path):
    path = _write(tmp_path / "a.csv", "text\na\nb\nc\n\"broken\n")
    assert [r["text"] for r in load_records(path, {"max_rows": 2})] == ["a", "b"]
    assert len(load_records("synthetic_sentiment", {"max_rows": 10}, rank=1, world_size=2)) == 5


def test_dataset_specs_and_default_split():
    assert len(load_records("synthetic_pairs", {}, required=("text", "text_pair", "label"))) == 800
    assert len(load_records("synthetic_pairs:test", {})) == 200
    with pytest.raises(DataError, match="missing text pair"):
        load_records("synthetic_sentiment", {}, required=("text", "text_pair"))


def test_unknown_name_lists_datasets():
    with pytest.raises(DataError, match=r"no file, table or dataset named nothing_here; datasets: .*synthetic_"):
        load_records("nothing_here", {})


def test_folder_is_not_a_source(tmp_path: Path):
    with pytest.raises(DataError, match="is a folder"):
        load_records(str(tmp_path), {})
