"""Hook specifications: the whole contract between etk and its plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("etk")
hookimpl = pluggy.HookimplMarker("etk")


@hookspec
def etk_register_readers() -> list[type[Any]]:
    """Return Reader classes (file formats and other record sources)."""


@hookspec
def etk_register_datasets() -> list[type[Any]]:
    """Return Dataset classes: named datasets that materialise their own records."""


@hookspec
def etk_register_models() -> list[type[Any]]:
    """Return Backbone classes for the ModelZoo."""


@hookspec
def etk_register_apps() -> list[type[Any]]:
    """Return App classes (task definitions)."""


@hookspec
def etk_register_algorithms() -> list[type[Any]]:
    """Return Algorithm classes (training procedures)."""


@hookspec
def etk_register_strategies() -> list[type[Any]]:
    """Return Strategy classes (where and how training runs)."""


@hookspec
def etk_register_exporters() -> list[type[Any]]:
    """Return Exporter classes (serving artifacts)."""


@hookspec
def etk_register_commands(cli: click.Group) -> None:
    """Add extra commands to the `etk` command group."""


@hookspec
def etk_plugin_notes() -> list[str]:
    """Return short runtime notes for `etk plugins` (e.g. which kernel build is active); must be cheap."""
