"""The teacher: checked against the run before anything is written, its outputs computed once and reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from etk_distill.teacher import Teacher, cache_files

from etk_core.testing import needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

SETS = ["train.batch_size=16", "train.max_length=32", "train.threads=1", "train.lr=1e-3", "data.max_rows=64",
        "train.eval_every=0"]


def kd_args(out: Path, teacher: Path | None, *sets: str, app: str = "text_classify",
            data: tuple[str, ...] = ("synthetic_sentiment:train", "synthetic_sentiment:dev")) -> list[str]:
    args = ["train", "--app", app, "--algo", "kd", "--model", "bert-tiny", "--data", f"train={data[0]}",
            "--data", f"dev={data[1]}", "--no-export", "--json", "--output", str(out)]
    for item in (*SETS, *([f"algo.teacher={teacher}"] if teacher else []), *sets):
        args += ["--set", item]
    return args


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many records each teacher pass computed (runs are in-process, so the patch sees them)."""
    calls: list[int] = []
    compute = Teacher.compute

    def counting(self, records, batch_size):
        calls.append(len(records))
        return compute(self, records, batch_size)

    monkeypatch.setattr(Teacher, "compute", counting)
    return calls


def test_outputs_are_computed_once_for_all_epochs_and_reused_by_the_next_run(tmp_path, tiny_teacher, counted):
    shared = tmp_path / "teacher-cache"
    first = run_cli(kd_args(tmp_path / "a", tiny_teacher, "train.epochs=3", f"algo.teacher_cache={shared}"))
    assert first.exit_code == 0, first.output
    assert counted == [64]  # three epochs, one teacher pass
    again = run_cli(kd_args(tmp_path / "b", tiny_teacher, "train.epochs=3", f"algo.teacher_cache={shared}"))
    assert again.exit_code == 0, again.output
    assert counted == [64]  # the second run read the cache
    assert json.loads(first.output.strip().splitlines()[-1])["dev_accuracy"] == \
        json.loads(again.output.strip().splitlines()[-1])["dev_accuracy"]
    (file,) = cache_files(shared)
    file.write_bytes(file.read_bytes()[:100])  # a cut cache file is recomputed, not trusted
    third = run_cli(kd_args(tmp_path / "c", tiny_teacher, f"algo.teacher_cache={shared}"))
    assert third.exit_code == 0, third.output
    assert counted == [64, 64]


def test_other_data_gets_its_own_outputs(tmp_path, tiny_teacher, counted):
    done = run_cli(kd_args(tmp_path / "a", tiny_teacher))
    assert done.exit_code == 0, done.output
    assert len(cache_files(tmp_path / "a" / "cache" / "teacher")) == 1
    other = run_cli(kd_args(tmp_path / "b", tiny_teacher, "data.max_rows=48"))
    assert other.exit_code == 0, other.output
    assert counted == [64, 48]


def _refused(result, out: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert all(word in errors[0] for word in words), errors[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_teacher_of_another_app_is_refused_before_anything_is_written(tmp_path, tiny_teacher):
    out = tmp_path / "run"
    result = run_cli(kd_args(out, tiny_teacher, app="text_match",
                             data=("synthetic_pairs:train", "synthetic_pairs:dev")))
    _refused(result, out, "text_classify", "text_match")


def test_a_teacher_with_other_labels_is_refused(tmp_path, tiny_teacher):
    data = tmp_path / "data.tsv"
    data.write_text("text\tlabel\n" + "".join(f"words {i}\t{'good' if i % 2 else 'bad'}\n" for i in range(20)),
                    encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli(kd_args(out, tiny_teacher, data=(str(data), str(data))))
    _refused(result, out, "labels", "negative", "bad")


def test_no_teacher_is_one_line(tmp_path):
    out = tmp_path / "run"
    result = run_cli(kd_args(out, None))
    _refused(result, out, "algo.teacher")


def test_a_missing_teacher_folder_is_one_line(tmp_path):
    out = tmp_path / "run"
    result = run_cli(kd_args(out, tmp_path / "nowhere"))
    _refused(result, out, "nowhere")
