"""Options shared by several commands."""

from __future__ import annotations

from typing import Any

from etk_core.config import parse_assignment
from etk_core.errors import ConfigError


def parse_data(values: tuple[str, ...]) -> dict[str, str]:
    """`--data role=spec` pairs into a mapping."""
    sources: dict[str, str] = {}
    for value in values:
        role, spec = parse_assignment(value, flag="--data")
        if not spec.strip():
            raise ConfigError(f"--data {value!r}: no source after '='; e.g. --data {role}=train.tsv")
        if role in sources:
            raise ConfigError(f"--data {role}= is given twice ({sources[role]} and {spec}); give each role once")
        sources[role] = spec
    return sources


def echo_json(data: Any) -> None:
    """Print one JSON object on stdout."""
    import json

    import click

    click.echo(json.dumps(data, indent=None, sort_keys=False))
