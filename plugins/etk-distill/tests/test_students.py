"""Students: `student-of-teacher` copies chosen teacher layers, trains, and leaves an artifact that loads,
exports and serves without its teacher; students whose layers cannot be matched are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from etk_core.testing import needs_packaged_minilm, run_cli

pytestmark = needs_packaged_minilm()

DATA = ["--data", "train=synthetic_sentiment:train", "--data", "dev=synthetic_sentiment:dev"]
QUICK = ["train.batch_size=16", "train.max_length=32", "train.threads=1", "data.max_rows=240"]


def distil(out: Path, algo: str, teacher: Path, model: str = "student-of-teacher", *sets: str,
           export: bool = False) -> object:
    args = ["train", "--app", "text_classify", "--algo", algo, "--model", model, *DATA, "--json", "--output",
            str(out), "--set", f"algo.teacher={teacher}"]
    if model == "student-of-teacher":
        args += ["--set", f"model.teacher={teacher}"]
    if not export:
        args.append("--no-export")
    for item in (*QUICK, *sets):
        args += ["--set", item]
    return run_cli(args)


def figures(result) -> dict:
    return json.loads(result.output.strip().splitlines()[-1])


def test_student_layers_are_copies_of_the_chosen_teacher_layers(minilm_teacher):
    from etk_distill.internals import encoder_of, layers_of
    from etk_distill.student import StudentOfTeacher

    import etk_core

    teacher = encoder_of(etk_core.load(minilm_teacher, backend="torch").model)
    for choice, expected in (("skip", [1, 3, 5]), ("last", [4, 5, 6]), ("2,3,6", [2, 3, 6])):
        student, tokenizer = StudentOfTeacher({"teacher": str(minilm_teacher), "layers": 3,
                                               "init_layers": choice}).load()
        assert student.config.num_hidden_layers == 3
        for mine, theirs in zip(layers_of(student), [layers_of(teacher)[i - 1] for i in expected], strict=True):
            for (name, value), (_, reference) in zip(mine.state_dict().items(), theirs.state_dict().items(),
                                                     strict=True):
                assert torch.equal(value, reference), (choice, name)
        assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    default, _ = StudentOfTeacher({"teacher": str(minilm_teacher)}).load()
    assert default.config.num_hidden_layers == 3  # half the teacher's 6


def test_half_depth_kd_student_learns_and_serves_without_its_teacher(tmp_path, minilm_teacher):
    import etk_core

    out = tmp_path / "student"
    done = distil(out, "kd", minilm_teacher, "student-of-teacher", "train.max_steps=40", "train.lr=1e-4",
                  export=True)
    assert done.exit_code == 0, done.output
    result = figures(done)
    teacher_accuracy = json.loads((minilm_teacher / "summary.json").read_text())["dev_accuracy"]
    assert result["dev_accuracy"] > 0.8, result  # two balanced classes: chance is 0.5
    assert result["dev_accuracy"] >= teacher_accuracy - 0.08, (result, teacher_accuracy)
    assert result["student_params"] < result["teacher_params"]
    assert result["speedup_vs_teacher"] > 0 and result["student_ms_per_example"] > 0
    meta = json.loads((out / "model" / "etk.json").read_text())
    assert meta["backbone"] == "student-of-teacher"
    assert json.loads((out / "model" / "encoder" / "config.json").read_text())["num_hidden_layers"] == 3
    record = json.loads((out / "model" / "onnx.json").read_text())
    assert record["parameters"] == result["student_params"] and record["bytes"]["model.onnx"] > 0
    texts = ["a wonderful, moving story", "dull and a waste of time"]
    torch_labels = [p["label"] for p in etk_core.load(out, backend="torch").predict(texts)]
    onnx_labels = [p["label"] for p in etk_core.load(out, backend="onnx").predict(texts)]
    assert torch_labels == onnx_labels
    quantised = run_cli(["export", str(out), "--quantize", "int8"])
    assert quantised.exit_code == 0, quantised.output
    assert {p["label"] for p in etk_core.load(out, backend="onnx-int8").predict(texts)} <= {"positive", "negative"}
    sizes = json.loads((out / "model" / "onnx.json").read_text())["bytes"]
    assert sizes["model.int8.onnx"] < sizes["model.onnx"] / 2
    assert not any(path.name == "teacher" for path in (out / "model").rglob("*"))


def test_tinybert_learns_through_both_stages(tmp_path, minilm_teacher):
    done = distil(tmp_path / "tiny", "tinybert", minilm_teacher, "student-of-teacher", "train.max_steps=30",
                  "train.lr=1e-4", "model.layers=2")
    assert done.exit_code == 0, done.output
    assert figures(done)["dev_accuracy"] > 0.8, figures(done)  # chance 0.5


def test_tinybert_projects_a_narrower_student_onto_the_teachers_width(tmp_path, minilm_teacher):
    done = distil(tmp_path / "narrow", "tinybert", minilm_teacher, "bert-tiny", "train.max_steps=6",
                    "train.log_every=2")
    assert done.exit_code == 0, done.output
    from etk_core.testing import metrics_log

    rows = [row for row in metrics_log(tmp_path / "narrow", "train") if row["stage"] == "intermediate"]
    assert rows and "lr_projections" in rows[-1]


def test_a_cnn_student_learns_from_a_transformer_teacher(tmp_path, minilm_teacher):
    done = distil(tmp_path / "cnn", "kd", minilm_teacher, "bert-tiny", "app.model=textcnn", "train.max_steps=60",
                  "train.lr=2e-3")
    assert done.exit_code == 0, done.output
    assert figures(done)["dev_accuracy"] > 0.7, figures(done)  # chance 0.5


def _one_error(result, out: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and all(word in errors[0] for word in words), result.output
    assert not out.exists()


@pytest.mark.parametrize("algo", ["pkd", "distilbert", "tinybert"])
def test_layer_losses_refuse_a_classic_student(tmp_path, tiny_teacher, algo):
    out = tmp_path / "run"
    _one_error(distil(out, algo, tiny_teacher, "bert-tiny", "app.model=textcnn"), out, "classic", "kd")


@pytest.mark.parametrize("algo", ["pkd", "distilbert"])
def test_same_width_losses_refuse_another_width(tmp_path, minilm_teacher, algo):
    out = tmp_path / "run"
    _one_error(distil(out, algo, minilm_teacher, "bert-tiny"), out, "width", "128", "384")


def test_layer_losses_refuse_another_tokenizer(tmp_path, tiny_teacher):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path / "other-vocab"
    vocab = folder / "vocab.txt"
    folder.mkdir()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(40)]]),
                     encoding="utf-8")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=45, hidden_size=128, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=256)).save_pretrained(folder)
    out = tmp_path / "run"
    _one_error(distil(out, "pkd", tiny_teacher, str(folder)), out, "tokenizer", "student-of-teacher")


def test_student_of_teacher_needs_its_teacher(tmp_path):
    out = tmp_path / "run"
    result = run_cli(["train", "--app", "text_classify", "--algo", "finetune", "--model", "student-of-teacher",
                      *DATA, "--output", str(out)])
    _one_error(result, out, "model.teacher")
