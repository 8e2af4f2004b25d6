"""Malformed input through `etk train`: one line naming the file and row, exit 2, no run folder left."""

from __future__ import annotations

import sqlite3

import pytest

from etk_core.testing import run_cli

GOOD = "text\tlabel\ngood film\tpos\nbad film\tneg\nnice book\tpos\n"

# name -> (file name, bytes, text that must appear in the one-line error: file and line/row)
CASES = {
    "missing label column": ("train.tsv", b"text\tstars\ngood\t5\nbad\t1\n", "train.tsv"),
    "missing text column": ("train.csv", b"title,label\ngood,pos\n", "train.csv"),
    "wrong field count": ("train.csv", b"text,label\ngood,pos\nbad,neg,extra\n", "train.csv:3"),
    "unparsable json line": ("train.jsonl", b'{"text": "good", "label": "pos"}\n{"text": "bad", label}\n',
                             "train.jsonl:2"),
    "non-object json line": ("train.jsonl", b'{"text": "good", "label": "pos"}\n[1, 2]\n', "train.jsonl:2"),
    "empty file": ("train.tsv", b"", "train.tsv"),
    "header only": ("train.tsv", b"text\tlabel\n", "train.tsv"),
    "not utf-8": ("train.tsv", b"text\tlabel\ngood\tpos\nbad \xff\xfe film\tneg\n", "train.tsv:3"),
    "empty text": ("train.tsv", b"text\tlabel\ngood\tpos\n \tneg\n", "train.tsv:3"),
    "empty label": ("train.tsv", b"text\tlabel\ngood\tpos\nbad\t\n", "train.tsv:3"),
    "unknown suffix": ("train.xlsx", b"whatever", "train.xlsx"),
    "single class": ("train.tsv", b"text\tlabel\ngood\tpos\nfine\tpos\n", "train.tsv"),
    "invalid json document": ("train.json", b'[{"text": "good", "label": "pos"},', "train.json"),
}


def _train(tmp_path, train_spec, dev_spec, extra=()):
    out = tmp_path / "run"
    result = run_cli(["train", "--model", "bert-tiny", "--data", f"train={train_spec}", "--data", f"dev={dev_spec}",
                      "--set", "train.max_steps=1", "--no-export", "--output", str(out), *extra])
    return result, out


def _assert_one_line_error(result, out, fragment):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not out.exists(), "a run folder was left behind"


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_training_file(tmp_path, case):
    name, content, fragment = CASES[case]
    bad = tmp_path / name
    bad.write_bytes(content)
    dev = tmp_path / "dev.tsv"
    dev.write_text(GOOD)
    result, out = _train(tmp_path, bad, dev)
    _assert_one_line_error(result, out, fragment)


def test_unknown_label_in_dev(tmp_path):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text(GOOD)
    dev.write_text("text\tlabel\ngood\tpos\nmeh\tneutral\n")
    result, out = _train(tmp_path, train, dev)
    _assert_one_line_error(result, out, "dev.tsv:3")
    assert "neutral" in result.stderr


def test_missing_file(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text(GOOD)
    result, out = _train(tmp_path, tmp_path / "nope.tsv", dev)
    _assert_one_line_error(result, out, "nope.tsv")


def test_missing_sql_table(tmp_path):
    db = tmp_path / "reviews.db"
    with sqlite3.connect(db) as connection:
        connection.execute("create table reviews (text, label)")
    dev = tmp_path / "dev.tsv"
    dev.write_text(GOOD)
    result, out = _train(tmp_path, f"{db}#ratings", dev)
    _assert_one_line_error(result, out, "ratings")
    assert "reviews" in result.stderr


def test_skip_counts_and_trains(tmp_path, caplog):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text(GOOD + "broken\trow\textra\n \tneg\n")
    dev.write_text(GOOD)
    result, out = _train(tmp_path, train, dev, extra=("--set", "data.on_error=skip"))
    assert result.exit_code == 0, result.output
    assert "skipped 2 malformed rows" in caplog.text
    assert (out / "model" / "etk.json").is_file()


def test_verbose_shows_traceback(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text(GOOD)
    result = run_cli(["--verbose", "train", "--model", "bert-tiny", "--data", f"train={tmp_path / 'no.tsv'}",
                      "--output", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" in result.stderr
