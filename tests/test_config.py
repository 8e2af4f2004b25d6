"""Config layering and validation: defaults <- file <- flags <- --set, one-line errors."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from etk_core.config import resolve
from etk_core.errors import ConfigError
from etk_core.options import NONE, Option


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


@pytest.mark.parametrize("option,value,message", [
    (Option(int, 32, min=1), -4, "must be >= 1, got -4"),
    (Option((int, float), 3, above=0), 0, "must be > 0, got 0"),
    (Option(float, 0.1, min=0, max=1), 1.5, "must be >= 0 and <= 1, got 1.5"),
    (Option((float, NONE), None, min=0, below=1), "1", "must be >= 0 and < 1, got 1"),
    (Option(float, 5e-5, above=0), "nan", "must be a finite number"),
    (Option(float, 5e-5, above=0), "-inf", "must be a finite number"),
])
def test_option_ranges(option, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        option.coerce(value)


def test_option_range_passes_null_bounds_and_non_numbers():
    dropout = Option((float, NONE), None, min=0, below=1)
    assert dropout.coerce("null") is None and dropout.coerce(0) == 0.0 and dropout.coerce("0.99") == 0.99
    assert Option(int, 1, min=1).coerce("1") == 1
    assert Option(str, "x", min=1).coerce("anything") == "anything"


def test_range_error_names_key_and_example():
    with pytest.raises(ConfigError, match=re.escape(
            "config key 'train.batch_size': must be >= 1, got -4; e.g. --set train.batch_size=32")):
        resolve(sets=["train.batch_size=-4"])
    with pytest.raises(ConfigError, match=re.escape("'train.max_steps': must be >= 1, got 0; e.g. --set "
                                                    "train.max_steps=1")):
        resolve(sets=["train.max_steps=0"])


def test_every_numeric_core_key_has_a_range():
    from etk_core.config import CORE_SCHEMA

    def leaves(schema, prefix=""):
        for key, entry in schema.items():
            yield from leaves(entry, f"{prefix}{key}.") if isinstance(entry, dict) else [(f"{prefix}{key}", entry)]

    numeric = [(key, option) for key, option in leaves(CORE_SCHEMA)
               if set(option.types) & {int, float} and bool not in option.types]
    assert numeric
    assert [key for key, option in numeric if not option.range_text()] == []


def test_component_defaults_are_inside_their_ranges():
    from etk_core.registry import KINDS, get_registry

    checked = 0
    for kind in KINDS:
        for component in get_registry(kind).components.values():
            for option in (getattr(component.cls, "options", None) or {}).values():
                if isinstance(option, Option):
                    option.coerce(option.default)  # raises where a default breaks its own range
                    checked += option.range_text() != ""
    assert checked >= 20


@pytest.mark.parametrize("kind,make,message", [
    ("output", lambda tmp: tmp / "file.txt", "is a file, not a folder"),
    ("output", lambda tmp: tmp / "file.txt" / "run", "so no folder can be made there"),
    ("file", lambda tmp: tmp, "is a folder, not a file"),
    ("file", lambda tmp: tmp / "nope.txt", "no file"),
    ("folder", lambda tmp: tmp / "nope", "no folder"),
])
def test_path_options(tmp_path, kind, make, message):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=message):
        Option((str, NONE), None, path=kind).coerce(str(make(tmp_path)))
    assert Option((str, NONE), None, path=kind).coerce(None) is None


def test_config_file_that_is_not_utf8_or_a_folder(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(b"train:\n  epochs: \xff\n")
    with pytest.raises(ConfigError, match="is not UTF-8"):
        resolve(path)
    with pytest.raises(ConfigError, match="is a folder"):
        resolve(tmp_path)


def test_data_options_of_evaluate_and_predict_are_ranged():
    from etk_core.cli.data_options import data_options

    assert data_options(("data.max_rows=5",))["max_rows"] == 5
    with pytest.raises(ConfigError, match="'data.max_rows': must be >= 1, got 0"):
        data_options(("data.max_rows=0",))
