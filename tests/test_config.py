"""Config layering and validation: defaults <- file <- flags <- --set, one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml

from etk_core.config import resolve
from etk_core.errors import ConfigError


def test_defaults(tmp_path):
    config = resolve()
    assert config["app"]["name"] == "text_classify"
    assert config["algo"]["name"] == "finetune"
    assert config["train"]["batch_size"] == 32
    assert config["data"]["on_error"] == "error"


def test_layers_in_order(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 5, "batch_size": 8}, "seed": 7}))
    config = resolve(path, {"train.batch_size": 16}, ["train.epochs=2", "train.lr=1e-4", "train.bucket=false"])
    assert config["seed"] == 7                # file
    assert config["train"]["batch_size"] == 16  # flag over file
    assert config["train"]["epochs"] == 2       # --set over file
    assert config["train"]["lr"] == pytest.approx(1e-4) and isinstance(config["train"]["lr"], float)
    assert config["train"]["bucket"] is False


def test_json_file_and_short_section_form(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"app": "text_classify", "train": {"max_steps": 3}}))
    config = resolve(path)
    assert config["app"]["name"] == "text_classify" and config["train"]["max_steps"] == 3


def test_component_options_join_their_section():
    config = resolve(sets=["app.dropout=0.3"])
    assert config["app"]["dropout"] == pytest.approx(0.3)


def test_misspelled_key_suggests_closest():
    with pytest.raises(ConfigError) as info:
        resolve(sets=["train.epoch=3"])
    assert "'train.epoch'" in str(info.value) and "did you mean 'train.epochs'" in str(info.value)


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown config key 'sed'.*'seed'"):
        resolve(sets=["sed=1"])


@pytest.mark.parametrize(("assignment", "fragment"), [
    ("train.batch_size=big", "'train.batch_size': expected int"),
    ("train.lr=fast", "'train.lr': expected float"),
    ("train.bucket=maybe", "'train.bucket': expected bool"),
    ("data.on_error=ignore", "not one of error, skip"),
])
def test_wrong_types_name_the_key(assignment, fragment):
    with pytest.raises(ConfigError) as info:
        resolve(sets=[assignment])
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_file_with_wrong_type(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  batch_size: [1, 2]\n")
    with pytest.raises(ConfigError, match="train.batch_size"):
        resolve(path)


def test_unparsable_file_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        resolve(path)


def test_set_without_equals():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        resolve(sets=["train.epochs"])


def test_saved_config_reproduces(tmp_path):
    from etk_core.config import save

    config = resolve(sets=["train.epochs=2", "data.text=review"], flags={"data.sources": {"train": "x.tsv"}})
    save(config, tmp_path / "config.yaml")
    assert resolve(tmp_path / "config.yaml") == config
