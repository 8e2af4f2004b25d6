"""`etk plugins` and `etk list`: what is installed and what it registers."""

from __future__ import annotations

from typing import Any

import click

from etk_core.cli.options import echo_json
from etk_core.registry import KINDS


def plugin_report() -> list[dict[str, Any]]:
    """Each loaded (or failed) plugin with its version, hooks and registered component names."""
    from etk_core.plugins import CORE_PLUGIN_NAME, get_plugin_manager
    from etk_core.registry import get_registry

    manager = get_plugin_manager()
    registered: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for name, component in get_registry(kind).components.items():
            registered.setdefault(component.plugin, {}).setdefault(kind, []).append(name)
    notes: dict[str, list[str]] = {}
    for impl in manager.hook.etk_plugin_notes.get_hookimpls():
        try:
            notes[impl.plugin_name] = [str(note) for note in impl.function() or []]
        except Exception as exc:  # a note is never worth breaking the listing
            notes[impl.plugin_name] = [f"notes failed: {type(exc).__name__}: {exc}"]
    return [{"name": info.name, "distribution": info.distribution, "version": info.version,
             "status": "failed: " + info.failed if info.failed else "loaded",
             "hooks": info.hooks, "registers": registered.get(info.name, {}), "notes": notes.get(info.name, [])}
            for info in sorted(manager.infos.values(), key=lambda info: (info.name != CORE_PLUGIN_NAME, info.name))]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions and what each registers."""
    report = plugin_report()
    if as_json:
        echo_json(report)
        return
    from etk_core.console import stdout_console, table

    listing = table("plugin", "version", "status", "registers and notes", title="etk plugins")
    for row in report:
        lines = [f"{kind}: {', '.join(sorted(names))}" for kind, names in row["registers"].items()]
        lines += [f"note: {note}" for note in row["notes"]]
        name = row["name"] if row["distribution"] == row["name"] else f"{row['name']}\n({row['distribution']})"
        listing.add_row(name, row["version"], row["status"], "\n".join(lines) or "-")
    stdout_console().print(listing)


@click.command("list")
@click.argument("kind")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_components(kind: str, as_json: bool) -> None:
    """List components of KIND: apps, algos, models, readers, datasets, strategies, exporters."""
    from etk_core.registry import get_registry

    registry = get_registry(kind)
    rows = [{"name": name, "plugin": component.plugin, "description": component.description}
            for name, component in sorted(registry.components.items())]
    if as_json:
        echo_json(rows)
        return
    from etk_core.console import stdout_console, table

    listing = table("name", "plugin", "description", title=f"etk {registry.kind}")
    for row in rows:
        listing.add_row(row["name"], row["plugin"], row["description"])
    stdout_console().print(listing)


COMMANDS = [plugins, list_components]
