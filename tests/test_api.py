"""`etk_core.train(...)`: the Python API trains like the CLI and returns a RunResult."""

from __future__ import annotations

import json

import pytest

import etk_core
from etk_core.errors import ConfigError
from etk_core.testing import needs_packaged_minilm, toy_classification_records

pytestmark = needs_packaged_minilm()


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "f.tsv"
    rows = toy_classification_records(96, seed=3)
    path.write_text("text\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows), encoding="utf-8")
    return str(path)


def test_train_with_keywords_returns_metrics_folder_and_artifact(tmp_path, tsv):
    events = []
    result = etk_core.train(app="text_classify", algo="finetune", model="bert-tiny", data={"train": tsv, "dev": tsv},
                            output=tmp_path / "run", export=False, on_progress=events.append,
                            settings={"train.epochs": 4, "train.batch_size": 16, "train.lr": 2e-3,
                                      "train.max_length": 32, "train.threads": 1})
    assert result.run_dir == tmp_path / "run" and result.artifact == tmp_path / "run" / "model"
    assert (result.artifact / "etk.json").is_file()
    assert result.metrics["dev_accuracy"] > 0.8  # separable toy data: chance is 0.5
    assert result.metrics == json.loads((result.run_dir / "summary.json").read_text())
    assert [row["step"] for row in result.history if row["kind"] == "eval"] == [6, 12, 18, 24]
    assert events[0] == {"event": "start", "stage": "train", "total": 24, "completed": 0}
    assert [e["step"] for e in events if e["event"] == "step"] == list(range(1, 25))
    assert events[-1]["event"] == "finish"
    assert etk_core.load(str(result.artifact)).predict(["great excellent love"])[0]["label"] == "pos"


def test_train_with_a_config_dict_and_the_readme_call(tmp_path, tsv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {"app": {"name": "text_classify"}, "model": {"name": "bert-tiny"},
              "data": {"sources": {"train": tsv, "dev": tsv}}, "train": {"max_steps": 3, "max_length": 32},
              "export": False}
    result = etk_core.train(config)
    assert result.metrics["steps"] == 3 and result.run_dir.parent.name == "runs"  # the default output
    # the README's call: defaults otherwise (3 epochs, ONNX export at the end)
    readme = etk_core.train(app="text_classify", algo="finetune", model="bert-tiny", data={"train": tsv, "dev": tsv},
                            output=tmp_path / "readme")
    assert readme.metrics["steps"] == 9 and (readme.artifact / "model.onnx").is_file()
    assert readme.metrics["onnx_max_abs_diff"] < 1e-4


def test_errors_are_raised_before_anything_is_written(tmp_path, tsv):
    with pytest.raises(ConfigError, match="needs --data source"):
        etk_core.train(app="text_classify", algo="mgtl", model="bert-tiny", data={"target": tsv, "dev": tsv},
                       output=tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown config key 'train.epoch'"):
        etk_core.train(app="text_classify", model="bert-tiny", data={"train": tsv}, settings={"train.epoch": 1},
                       output=tmp_path / "x")
    assert not (tmp_path / "x").exists()
