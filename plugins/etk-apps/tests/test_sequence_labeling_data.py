"""sequence_labeling data: the CoNLL reader, tokens/tags columns in JSONL/TSV, the conll2003 dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etk_core.data.datasets import shared_datasets_dir
from etk_core.data.load import load_records, resolve_source
from etk_core.errors import DataError
from etk_core.plugins import reset_plugin_manager
from etk_core.registry import get_registry

REQUIRED = ("tokens", "tags")
CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
"""


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    monkeypatch.delenv("ETK_LOAD_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_registered():
    assert get_registry("apps").get("sequence_labeling").main_metric == "f1"
    assert "conll" in get_registry("readers").names()
    assert "conll2003" in get_registry("datasets").names()


@pytest.mark.parametrize("suffix", [".conll", ".txt", ".bio"])
def test_conll_sentences_with_locations(tmp_path, suffix):
    path = _write(tmp_path / f"ner{suffix}", CONLL)
    assert resolve_source(path).name == "conll"
    records = load_records(path, {}, required=REQUIRED)
    assert [r["tokens"] for r in records] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert records[0]["tags"] == ["B-ORG", "O", "B-MISC"] and records[1]["tags"] == ["B-PER", "I-PER"]
    assert [r["_where"] for r in records] == [f"{path}:3", f"{path}:7", f"{path}:12"]
    assert records[0]["text"] == "EU rejects German"  # derived: there is no text column


def test_tag_column_option_and_token_only_files(tmp_path):
    path = _write(tmp_path / "ner.conll", CONLL)
    chunks = load_records(f"{path}#tag_column=3", {}, required=REQUIRED)
    assert chunks[0]["tags"] == ["B-NP", "B-VP", "B-NP"]
    assert load_records(f"{path}#tag_column=-3", {}, required=REQUIRED)[0]["tags"] == ["NNP", "VBZ", "JJ"]
    with pytest.raises(DataError, match=r"#tag_column=N"):
        load_records(f"{path}#tags=2", {}, required=REQUIRED)
    with pytest.raises(DataError, match=r"ner\.conll:3: tag column tag_column=9 is outside the 4 columns"):
        load_records(f"{path}#tag_column=9", {}, required=REQUIRED)
    plain = _write(tmp_path / "input.conll", "John\nsmith\n\nparis\n")
    records = load_records(plain, {}, required=("text",))  # what `etk predict` asks for
    assert [r["tokens"] for r in records] == [["John", "smith"], ["paris"]] and "tags" not in records[0]
    with pytest.raises(DataError, match=r"input\.conll: no tags column among: tokens"):
        load_records(plain, {}, required=REQUIRED)


def test_txt_is_sniffed_and_tsv_keeps_its_txt(tmp_path):
    tsv = _write(tmp_path / "reviews.txt", "text\tlabel\ngood book\tpos\n")
    assert resolve_source(tsv).name == "tsv"
    assert resolve_source(_write(tmp_path / "prose.txt", "O O\nB-X\n")).name == "tsv"
    assert resolve_source(_write(tmp_path / "ner.txt", "EU B-ORG\nrejects O\n")).name == "conll"


def test_one_bad_line_near_the_top_of_a_txt_is_named_not_misread_as_tsv(tmp_path):
    body = "".join(f"w{i} NN {'B-PER' if i % 3 else 'O'}\n" + ("\n" if i % 4 == 3 else "") for i in range(40))
    lines = body.splitlines(keepends=True)
    lines[5] = "Peter B-PER\n"  # two columns where the file has three
    path = _write(tmp_path / "ner.txt", "".join(lines))
    assert resolve_source(path).name == "conll"
    with pytest.raises(DataError, match=r"ner\.txt:6: expected 3 columns like the file's first line, found 2"):
        load_records(path, {}, required=REQUIRED)


def test_malformed_lines_are_one_line_errors_or_skipped(tmp_path):
    path = _write(tmp_path / "bad.conll", "EU NNP B-ORG\nrejects O\n\nPeter NNP B-PER\n")
    with pytest.raises(DataError) as info:
        load_records(path, {}, required=REQUIRED)
    message = str(info.value)
    assert message.startswith(f"{path}:2: expected 3 columns like the file's first line, found 2")
    assert "\n" not in message
    kept = load_records(path, {"on_error": "skip"}, required=REQUIRED)
    assert [r["tokens"] for r in kept] == [["Peter"]]
    with pytest.raises(DataError, match=r"empty\.conll: no sentences"):
        load_records(_write(tmp_path / "empty.conll", "-DOCSTART- O\n\n"), {}, required=REQUIRED)
    (tmp_path / "latin.conll").write_bytes(b"caf\xe9 O\n")
    with pytest.raises(DataError, match=r"latin\.conll:1: not UTF-8"):
        load_records(str(tmp_path / "latin.conll"), {}, required=REQUIRED)


@pytest.mark.parametrize(("row", "expected_text"), [
    ({"tokens": ["New", "York"], "tags": ["B-LOC", "I-LOC"]}, "New York"),
    ({"words": ["New", "York"], "ner_tags": ["B-LOC", "I-LOC"]}, "New York"),
    ({"text": "New  York", "tokens": ["New", "York"], "labels": ["B-LOC", "I-LOC"]}, "New  York"),
    ({"words": "New York", "label": "B-LOC I-LOC"}, "New York"),
])
def test_jsonl_columns_map_to_tokens_and_tags(tmp_path, row, expected_text):
    path = _write(tmp_path / "a.jsonl", json.dumps(row) + "\n")
    record = load_records(path, {}, required=REQUIRED)[0]
    assert record["tokens"] == ["New", "York"] and record["tags"] == ["B-LOC", "I-LOC"]
    assert record["text"] == expected_text


def test_other_apps_keep_labels_as_label(tmp_path):
    path = _write(tmp_path / "a.jsonl", '{"text": "good", "labels": "pos", "tags": 3}\n')
    record = load_records(path, {}, required=("text", "label"))[0]
    assert record["label"] == "pos" and record["tags"] == 3  # not a sequence task: left as it is
    tsv = _write(tmp_path / "b.tsv", "sent\tner\nNew York\tB-LOC I-LOC\n")
    record = load_records(tsv, {"tokens": "sent", "tags": "ner"}, required=REQUIRED)[0]
    assert record["tokens"] == ["New", "York"] and record["tags"] == ["B-LOC", "I-LOC"]


def test_token_tag_mismatch_and_bad_values(tmp_path):
    path = _write(tmp_path / "a.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n{"tokens": [], "tags": []}\n'
                                        '{"tokens": 5, "tags": ["O"]}\n')
    with pytest.raises(DataError, match=r"a\.jsonl:1: 2 tokens but 1 tags; give one tag per token"):
        load_records(path, {}, required=REQUIRED)
    with pytest.raises(DataError, match=r"all 3 rows are malformed"):
        load_records(path, {"on_error": "skip"}, required=REQUIRED)
    with pytest.raises(DataError, match=r"no tags column among: tokens; name it with --set data.tags=COLUMN"):
        load_records(_write(tmp_path / "b.jsonl", '{"tokens": ["a"]}\n'), {}, required=REQUIRED)


@pytest.mark.skipif(shared_datasets_dir() is None or not (shared_datasets_dir() / "conll2003").is_dir(),
                    reason="CoNLL-2003 is not in the shared datasets folder")
def test_conll2003_dataset():
    dev = load_records("conll2003:dev_500", {}, required=REQUIRED)
    assert len(dev) == 500 and dev == load_records("conll2003:dev_500", {}, required=REQUIRED)
    assert all(len(r["tokens"]) == len(r["tags"]) for r in dev)
    test = load_records("conll2003:test", {}, required=REQUIRED)
    assert len(test) == 3453 and test[0]["tokens"][:2] == ["SOCCER", "-"]
    assert test[0]["_where"].endswith("conll2003/test.txt:3")
    assert {t for r in test for t in r["tags"]} == {"O", *(f"{p}-{k}" for p in "BI" for k in
                                                          ("PER", "ORG", "LOC", "MISC"))}
    with pytest.raises(DataError, match="dataset conll2003 has no split 'valid'"):
        load_records("conll2003:valid", {}, required=REQUIRED)
