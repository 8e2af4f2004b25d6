"""mrc data: the `squad` reader (SQuAD, QuAC history, CoQA), JSONL questions, errors, the sample datasets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from etk_apps.mrc import SquadReader

from etk_core.data.datasets import shared_datasets_dir
from etk_core.data.load import load_records, resolve_source
from etk_core.errors import DataError

REQUIRED = ("text", "text_pair", "answers")
SQUAD = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
    {"context": "the cat sat on the mat .", "qas": [
        {"id": "a", "question": "where did the cat sit ?", "answers": [{"text": "on the mat", "answer_start": 12}]},
        {"id": "b", "question": "who sat ?", "answers": [{"text": "the cat", "answer_start": 0}]}]},
    {"context": "dogs bark .", "qas": [{"id": "c", "question": "what do dogs do ?",
                                      "answers": [{"text": "bark", "answer_start": 5}]}]}]}]}


def write(path, document) -> str:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def _plugins():
    from etk_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_registered_and_light():
    from etk_core.registry import get_registry

    assert get_registry("apps").get("mrc").main_metric == "f1"
    assert get_registry("readers").get("squad").priority == 10
    assert {"squad_sample", "quac_sample"} <= set(get_registry("datasets").names())
    code = ("import sys, etk_apps.hooks as h; h.etk_register_apps(); h.etk_register_readers(); "
            "h.etk_register_datasets(); heavy = {'torch', 'transformers', 'numpy'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_squad_json_one_row_per_question_with_lines(tmp_path):
    path = write(tmp_path / "train.json", SQUAD)
    assert resolve_source(path) is SquadReader
    generic = write(tmp_path / "rows.json", {"data": [{"text": "a", "label": "x"}]})
    assert resolve_source(generic) is not SquadReader
    records = load_records(path, {}, required=REQUIRED)
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert records[0]["text"] == "where did the cat sit ?" and records[0]["text_pair"] == "the cat sat on the mat ."
    assert records[2]["answers"] == [{"text": "bark", "answer_start": 5}] and records[0]["title"] == "T"
    lines = (tmp_path / "train.json").read_text(encoding="utf-8").splitlines()
    for record in records:
        line = int(record["_where"].rsplit(":", 1)[1])
        assert record["_where"].startswith(path) and lines[line - 1].strip() == "{"
        assert f'"id": "{record["id"]}"' in "\n".join(lines[line:line + 12])
    assert all("history" not in r for r in records)  # SQuAD questions are independent


def test_quac_dialogues_carry_history(tmp_path):
    answer = {"text": "sat", "answer_start": 8}
    qas = [{"id": f"d_q#{i}", "question": f"q{i} ?", "answers": [{"text": "cat", "answer_start": 4}],
            "orig_answer": answer if i == 0 else {"text": "mat", "answer_start": 19}, "followup": "y", "yesno": "x"}
           for i in range(3)]
    path = write(tmp_path / "quac.json", {"data": [{"title": "T", "paragraphs": [
        {"context": "the cat sat on the mat .", "qas": qas, "id": "d"}]}]})
    records = load_records(path, {}, required=REQUIRED)
    assert [len(r["history"]) for r in records] == [0, 1, 2]
    assert records[2]["history"] == [{"question": "q0 ?", "answer": answer},
                                     {"question": "q1 ?", "answer": {"text": "mat", "answer_start": 19}}]
    assert records[1]["followup"] == "y" and records[1]["yesno"] == "x"


def test_coqa_stories(tmp_path):
    story = "Anna has a red bike. She rides it to school every day."
    document = {"version": "1.0", "data": [{"id": "s1", "filename": "f.txt", "story": story,
                                            "questions": [{"input_text": "what does Anna have?", "turn_id": 1},
                                                          {"input_text": "where does she ride it?", "turn_id": 2},
                                                          {"input_text": "is it blue?", "turn_id": 3}],
                                            "answers": [{"span_start": 5, "span_end": 19, "span_text": "has a red bike",
                                                         "input_text": "a red bike", "turn_id": 1},
                                                        {"span_start": 21, "span_end": 44, "input_text": "to school",
                                                         "span_text": "She rides it to school", "turn_id": 2},
                                                        {"span_start": -1, "span_end": -1, "span_text": "unknown",
                                                         "input_text": "unknown", "turn_id": 3}]}]}
    records = load_records(write(tmp_path / "coqa.json", document), {}, required=REQUIRED)
    assert [r["id"] for r in records] == ["s1_1", "s1_2", "s1_3"]
    assert records[0]["answers"] == [{"text": "a red bike", "answer_start": 9}]
    assert records[1]["answers"] == [{"text": "to school", "answer_start": 34}]
    assert records[2]["answers"] == [] and len(records[2]["history"]) == 2
    assert records[1]["history"][0]["answer"] == {"text": "a red bike", "answer_start": 9}


def test_jsonl_questions_through_the_core_reader(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"id": 1, "question": "who sat ?", "context": "the cat sat .",
                                "answers": [{"text": "the cat", "answer_start": 0}]}) + "\n", encoding="utf-8")
    (record,) = load_records(str(path), {}, required=REQUIRED)
    assert (record["text"], record["text_pair"], record["_where"]) == ("who sat ?", "the cat sat .", f"{path}:1")


def test_malformed_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [{"title": "T", "paragraphs": [\n{"context": "x", "qas": [}\n]}]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json:2: invalid JSON") as info:
        load_records(str(broken), {})
    assert "\n" not in str(info.value)
    document = json.loads(json.dumps(SQUAD))
    del document["data"][0]["paragraphs"][1]["context"]
    path = write(tmp_path / "bad.json", document)
    with pytest.raises(DataError, match=rf"^{path}:\d+: a paragraph has no context text; fix the row"):
        load_records(path, {}, required=REQUIRED)
    assert len(load_records(path, {"on_error": "skip"}, required=REQUIRED)) == 2
    no_answers = json.loads(json.dumps(SQUAD))
    del no_answers["data"][0]["paragraphs"][0]["qas"][1]["answers"]
    path = write(tmp_path / "test.json", no_answers)
    with pytest.raises(DataError, match=rf"^{path}:\d+: missing answers"):
        load_records(path, {}, required=REQUIRED)
    assert len(load_records(path, {}, required=("text",))) == 3  # enough to predict


@pytest.mark.skipif(shared_datasets_dir() is None or not (shared_datasets_dir() / "qa_samples").is_dir(),
                    reason="the shared datasets folder with qa_samples is absent")
def test_sample_datasets():
    squad = load_records("squad_sample", {}, required=REQUIRED)
    assert len(squad) == 5 and squad == load_records("squad_sample:dev", {}, required=REQUIRED)
    assert squad[0]["answers"][0]["text"] == "Saint Bernadette Soubirous"
    quac = load_records("quac_sample:train", {}, required=REQUIRED)
    assert len(quac) == 12 and [len(r["history"]) for r in quac] == [0, 1, 2, 3, 4, 5] * 2
    with pytest.raises(DataError, match="no split 'test'"):
        load_records("quac_sample:test", {})
