"""Readers under any bytes: a TSV, CSV, JSONL or JSON file is either read or refused with a DataError that
names the file (and the line or row where one is at fault) on one line; never another exception."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etk_core.config import CORE_SCHEMA
from etk_core.data.load import load_records
from etk_core.errors import DataError

OPTIONS = {name: option.default for name, option in CORE_SCHEMA["data"].items()}
#: ETK_FUZZ_EXAMPLES=2000 for a longer hunt than CI's
FUZZ = settings(max_examples=int(os.environ.get("ETK_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Pieces that steer the readers into their corners: delimiters, quotes, line ends, NUL, a BOM, bytes
#: that are not UTF-8, JSON punctuation and the column names the readers look for.
PIECES = [b",", b"\t", b'"', b"'", b"\n", b"\r\n", b"\r", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xe2\x82",
          b"{", b"}", b"[", b"]", b":", b"null", b"true", b"1e999", b"\\", b"\\u", b"\\ud800", b" ", b"text",
          b"label", b"pos", b"neg", b"review", b"sentence2", b"tokens", b"tags", b'"text"', b'"label"',
          "caf\u00e9 \U0001f600".encode()]
HEADERS = {".tsv": b"text\tlabel\n", ".csv": b"text,label\n", ".jsonl": b'{"text": "a b", "label": "pos"}\n',
           ".json": b'[{"text": "a b", "label": "pos"}'}

chunks = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=8),
                            st.text(max_size=12).map(lambda text: text.encode("utf-8", "surrogatepass"))),
                  max_size=40).map(b"".join)


cells = st.text(st.characters(exclude_categories=("Cs",)), max_size=15)
labels = st.one_of(st.sampled_from(["pos", "neg", "", " "]), cells)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | cells,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(cells, inner, max_size=3),
                           max_leaves=6)
json_rows = st.lists(st.fixed_dictionaries({"text": st.one_of(cells, json_values),
                                            "label": st.one_of(labels, json_values)},
                                           optional={"domain": json_values, "extra": json_values}), max_size=6)


def well_formed(suffix: str) -> st.SearchStrategy[bytes]:
    """Files that mostly parse: rows of random cells under the format's header."""
    if suffix == ".jsonl":
        return json_rows.map(lambda rows: "".join(json.dumps(row) + "\n" for row in rows).encode())
    if suffix == ".json":
        return json_rows.map(lambda rows: json.dumps(rows).encode())
    delimiter = "\t" if suffix == ".tsv" else ","
    rows = st.lists(st.tuples(cells, labels), max_size=6)
    return rows.map(lambda rows: HEADERS[suffix] + "".join(f"{text}{delimiter}{label}\n" for text, label in rows)
                    .encode())


def spliced(suffix: str) -> st.SearchStrategy[bytes]:
    """A well-formed file with fuzzed bytes put in at some position."""
    return st.tuples(well_formed(suffix), chunks, st.floats(0, 1)).map(
        lambda parts: parts[0][:int(len(parts[0]) * parts[2])] + parts[1] + parts[0][int(len(parts[0]) * parts[2]):])


def contents(suffix: str) -> st.SearchStrategy[bytes]:
    """Raw bytes, the format's header followed by fuzzed bytes, well-formed files and spliced ones."""
    return st.one_of(st.binary(max_size=200), chunks, chunks.map(lambda body: HEADERS[suffix] + body),
                     well_formed(suffix), spliced(suffix))


def read_or_refuse(path: Path, required: tuple[str, ...]) -> None:
    try:
        records = load_records(str(path), dict(OPTIONS), required=required)
    except DataError as exc:
        message = str(exc)
        assert path.name in message, message
        assert "\n" not in message, message
        if re.search(r"\b(line|row) \d+|:\d+:", message) is None:  # a whole-file verdict, not a row's
            assert re.search(r"no rows|no usable records|column|empty|not UTF-8|JSON|header", message), message
        return
    assert records and all(isinstance(record, dict) for record in records)
    for record in records:
        for key in required:
            assert record.get(key) not in (None, ""), record


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="etk-fuzz-") as name:
        yield Path(name)


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl", ".json"])
def test_any_bytes_are_read_or_refused(folder, suffix):
    path = folder / f"data{suffix}"

    @FUZZ
    @given(data=contents(suffix), labelled=st.booleans())
    def check(data: bytes, labelled: bool) -> None:
        path.write_bytes(data)
        read_or_refuse(path, ("text", "label") if labelled else ("text",))

    check()


@pytest.mark.parametrize("suffix,row", [(".csv", '"{}",pos\n'), (".tsv", "{}\tpos\n"),
                                        (".jsonl", '{{"text": "{}", "label": "pos"}}\n')])
def test_a_two_megabyte_field_is_read(tmp_path, suffix, row):
    big = ("word " * 400_000).strip()  # 2 MB
    path = tmp_path / f"big{suffix}"
    header = "" if suffix == ".jsonl" else HEADERS[suffix].decode()
    path.write_text(header + row.format(big) + row.format("short"), encoding="utf-8")
    records = load_records(str(path), dict(OPTIONS), required=("text", "label"))
    assert [len(record["text"]) for record in records] == [len(big), 5]
