"""The `data.*` options of commands that read data outside a training run."""

from __future__ import annotations

from typing import Any

from etk_core.config import CORE_SCHEMA, merge, parse_assignment, set_dotted, validate
from etk_core.errors import ConfigError


def data_options(sets: tuple[str, ...]) -> dict[str, Any]:
    """Defaults of the `data` section with `--set data.KEY=VALUE` overrides applied and validated."""
    raw: dict[str, Any] = {}
    for assignment in sets:
        key, value = parse_assignment(assignment)
        if not key.startswith("data."):
            raise ConfigError(f"--set {key}: only data.* keys apply here (e.g. data.label=sentiment)")
        set_dotted(raw, key, value)
    schema = {"data": CORE_SCHEMA["data"]}
    defaults = {"data": {name: option.default for name, option in CORE_SCHEMA["data"].items()}}
    return merge(defaults, validate(raw, schema))["data"]
