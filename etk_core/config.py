"""Run configuration: defaults <- file <- command-line flags <- `--set` overrides, validated."""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

from etk_core.errors import ConfigError
from etk_core.options import NONE as _NONE
from etk_core.options import Option

#: Sections whose extra keys come from the chosen component's `options`.
COMPONENT_SECTIONS = {"app": "apps", "algo": "algorithms", "model": "models", "strategy": "strategies"}

CORE_SCHEMA: dict[str, Any] = {
    "app": {"name": Option(str, "text_classify", "application (etk list apps)")},
    "algo": {"name": Option(str, "finetune", "training algorithm (etk list algos)")},
    "model": {"name": Option(str, "minilm-l6", "backbone name, preset or local Hugging Face folder"),
              "dropout": Option((float, _NONE), None, "dropout probability inside the backbone (hidden and "
                                                      "attention); default: the checkpoint's", min=0, below=1)},
    "strategy": {"name": Option(str, "single", "execution strategy (etk list strategies)")},
    "data": {
        "sources": Option(dict, {}, "role -> file, table URL or dataset name (set by --data role=...)"),
        "text": Option((str, _NONE), None, "column holding the text (default: auto-detect)"),
        "text_pair": Option((str, _NONE), None, "column holding the second text of a pair"),
        "label": Option((str, _NONE), None, "column holding the label"),
        "domain": Option((str, _NONE), None, "column holding the domain"),
        "tokens": Option((str, _NONE), None, "column holding the words of a sentence (sequence labeling)"),
        "tags": Option((str, _NONE), None, "column holding one tag per word (sequence labeling)"),
        "schema": Option((str, _NONE), None, "EasyTransfer-style schema, e.g. 'review:str:1,sentiment:str:1'"),
        "on_error": Option(str, "error", "malformed rows: 'error' stops with the file and row, 'skip' counts them"),
        "table": Option((str, _NONE), None, "table name for SQL sources"),
        "max_rows": Option((int, _NONE), None, "read at most this many rows per source", min=1),
    },
    "train": {
        "epochs": Option((int, float), 3, "passes over the training data", above=0),
        "max_steps": Option((int, _NONE), None, "stop after this many optimiser steps", min=1),
        "batch_size": Option(int, 32, "examples per optimiser step and process (before accumulation)", min=1),
        "eval_batch_size": Option(int, 64, "examples per evaluation batch", min=1),
        "lr": Option(float, 5e-5, "peak learning rate (0 freezes the weights)", min=0),
        "weight_decay": Option(float, 0.01, "AdamW weight decay", min=0),
        "warmup_ratio": Option(float, 0.1, "fraction of steps with linear warm-up", min=0, max=1),
        "grad_accum": Option(int, 1, "gradient accumulation steps", min=1),
        "max_grad_norm": Option((float, _NONE), 1.0, "gradient clipping norm (null: off)", above=0),
        "max_length": Option(int, 128, "maximum tokens per example", min=1),
        "eval_every": Option(int, 0, "evaluate every N steps (0: once per epoch)", min=0),
        "checkpoint_every": Option(int, 0, "checkpoint every N steps (0: at each evaluation)", min=0),
        "keep_checkpoints": Option(int, 1, "keep the newest N checkpoints (--resume falls back to an older one "
                                           "when the newest is damaged)", min=1),
        "log_every": Option(int, 10, "write a training row (losses, learning rates, samples/s) to metrics.jsonl "
                                     "every N steps (0: only at steps whose algorithm reports figures)", min=0),
        "early_stopping": Option(int, 0, "stop after N evaluations without improvement (0: off)", min=0),
        "precision": Option(str, "fp32", "fp32, bf16 or fp16 (fp16 needs CUDA); fp64 for numerical checks"),
        "bucket": Option(bool, True, "length-bucketed batches with dynamic padding"),
        "device": Option(str, "auto", "auto, cpu or cuda"),
        "threads": Option((int, _NONE), None, "torch intra-op threads (null: all cores)", min=1),
        "gradient_checkpointing": Option(bool, False, "recompute encoder activations in backward (less memory, "
                                                      "~30% more time)"),
    },
    "output": Option((str, _NONE), None, "run folder (default: runs/<app>-<algo>-<time>)", path="output"),
    "export": Option(bool, True, "export the best model to ONNX at the end of training"),
    "seed": Option(int, 42, "random seed", min=0, max=2**32 - 1),
}

CHOICES = {("data", "on_error"): ("error", "skip"), ("train", "precision"): ("fp32", "bf16", "fp16", "fp64"),
           ("train", "device"): ("auto", "cpu", "cuda")}


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a nested dict."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give --config the path of a YAML or JSON file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the --config path")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc}); check its permissions") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; re-save it as UTF-8 YAML or JSON") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        line = line + 1 if line is not None else getattr(exc, "lineno", None)
        where = f"{path}:{line}" if line is not None else str(path)
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{where}: cannot parse config: {message}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys, not {type(data).__name__}")
    return data


def set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c = value` in a nested dict, creating sections."""
    *parents, leaf = dotted.split(".")
    node = target
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {part!r} is a value, not a section")
        node = child
    node[leaf] = value


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, str]:
    """Split `key=value` as given on the command line."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE, e.g. {flag} train.epochs=3")
    return key.strip(), value


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` onto a copy of `base` (mappings merge, the rest replaces)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and key != "sources":
            result[key] = merge(result[key], value)
        elif key == "sources" and isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = {**result[key], **value}
        else:
            result[key] = copy.deepcopy(value)
    return result


def _coerce(key: str, value: Any, option: Option) -> Any:
    """Check (and for strings from the command line, convert) a value to the option's type."""
    try:
        return option.coerce(value)
    except ValueError as exc:
        raise ConfigError(f"config key {key!r}: {exc}{_example(key, option)}") from None


def _example(key: str, option: Option) -> str:
    """`; e.g. --set KEY=VALUE` with a valid value of the option, or empty where there is none to show."""
    example = option.example()
    if example is None or isinstance(example, dict | list) or option.path:
        return ""
    text = str(example).lower() if isinstance(example, bool) else str(example)
    return f"; e.g. --set {key}={text}"


def validate(raw: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Check keys and types of `raw` against `schema`; return the coerced values."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            valid = [f"{prefix}{name}" for name in schema]
            close = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys here: {', '.join(valid)}"
            raise ConfigError(f"unknown config key {dotted!r}{hint}")
        entry = schema[key]
        if isinstance(entry, dict):
            if not isinstance(value, dict):
                example = f"{dotted}.{next(iter(entry))}"
                raise ConfigError(f"config key {dotted!r} is a section; set its keys, e.g. {example}")
            out[key] = validate(value, entry, f"{dotted}.")
        else:
            coerced = _coerce(dotted, value, entry)
            allowed = CHOICES.get(tuple(dotted.split(".")))
            if allowed and coerced not in allowed:
                raise ConfigError(f"config key {dotted!r}: {coerced!r} is not one of {', '.join(allowed)}")
            out[key] = coerced
    return out


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: _defaults(entry) if isinstance(entry, dict) else copy.deepcopy(entry.default)
            for key, entry in schema.items()}


def full_schema(raw: dict[str, Any]) -> dict[str, Any]:
    """The core schema extended with the options of the components `raw` chooses."""
    from etk_core.registry import get_component
    from etk_core.zoo import backbone_class

    schema = copy.deepcopy(CORE_SCHEMA)
    for section, kind in COMPONENT_SECTIONS.items():
        chosen = raw.get(section, {}).get("name") if isinstance(raw.get(section), dict) else None
        name = chosen or schema[section]["name"].default
        cls = backbone_class(name) if section == "model" else get_component(kind, name)
        schema[section].update(getattr(cls, "options", {}) or {})
    return schema


def resolve(file: str | Path | None = None, flags: dict[str, Any] | None = None,
            sets: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Build the validated run config from its layers."""
    raw: dict[str, Any] = load_file(file) if file else {}
    for dotted, value in (flags or {}).items():
        if value is not None:
            layer: dict[str, Any] = {}
            set_dotted(layer, dotted, value)
            raw = merge(raw, layer)
    for assignment in sets:
        key, value = parse_assignment(assignment)
        layer = {}
        set_dotted(layer, key, value)
        raw = merge(raw, layer)
    # `--set app=x` is a short form of app.name=x
    for section in COMPONENT_SECTIONS:
        if isinstance(raw.get(section), str):
            raw[section] = {"name": raw[section]}
    schema = full_schema(raw)
    return merge(_defaults(schema), validate(raw, schema))


def save(config: dict[str, Any], path: Path) -> None:
    """Write the resolved config as YAML (enough to reproduce the run with --config)."""
    import yaml

    from etk_core.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
