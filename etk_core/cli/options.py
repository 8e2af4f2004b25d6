"""Options shared by several commands."""

from __future__ import annotations

from typing import Any

from etk_core.config import parse_assignment


def parse_data(values: tuple[str, ...]) -> dict[str, str]:
    """`--data role=spec` pairs into a mapping."""
    sources: dict[str, str] = {}
    for value in values:
        role, spec = parse_assignment(value, flag="--data")
        sources[role] = spec
    return sources


def echo_json(data: Any) -> None:
    """Print one JSON object on stdout."""
    import json

    import click

    click.echo(json.dumps(data, indent=None, sort_keys=False))
