"""The plugin manager: built-ins first, then each `etk` entry point loaded on its own."""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass, field

import pluggy

from etk_core import hookspecs

logger = logging.getLogger("etk.plugins")

ENTRY_POINT_GROUP = "etk"
#: Comma-separated plugin names that are never loaded.
DISABLE_ENV = "ETK_DISABLE_PLUGINS"
#: When set, only these plugins load (comma-separated); set to "" for none but the built-ins.
LOAD_ENV = "ETK_LOAD_PLUGINS"
CORE_PLUGIN_NAME = "etk-core"


@dataclass
class PluginInfo:
    """Where a registered plugin came from."""

    name: str
    distribution: str
    version: str
    failed: str | None = None
    hooks: list[str] = field(default_factory=list)


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return ("unknown", "unknown")
    return (dist.metadata["Name"], dist.version)


def core_version() -> str:
    """The installed version of etk-core."""
    try:
        return importlib.metadata.version("etk-core")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class EtkPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and which failed."""

    def __init__(self) -> None:
        super().__init__("etk")
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def register_plugin(self, plugin: object, info: PluginInfo) -> None:
        """Register one plugin module or object with its origin."""
        self.register(plugin, name=info.name)
        info.hooks = sorted(impl.name for impl in self.get_hookcallers(plugin) or [])
        self.infos[info.name] = info

    def load_entry_points(self) -> None:
        """Load every `etk` entry point on its own; a broken one is a warning, not a crash."""
        blocked = _names_from_env(DISABLE_ENV) or set()
        allowed = _names_from_env(LOAD_ENV)
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            name = entry_point.name
            if name in blocked or (allowed is not None and name not in allowed):
                continue
            if self.has_plugin(name) or name in self.infos:
                continue
            distribution, version = _distribution_of(entry_point)
            try:
                module = entry_point.load()
            except Exception as exc:  # a broken plugin must not take the host down
                message = (
                    f"plugin {name!r} ({distribution} {version}) failed to load and is skipped: "
                    f"{type(exc).__name__}: {exc}; reinstall it or set {DISABLE_ENV}={name}"
                )
                logger.warning(message)
                self.infos[name] = PluginInfo(name, distribution, version, failed=str(exc))
                continue
            self.register_plugin(module, PluginInfo(name, distribution, version))


_manager: EtkPluginManager | None = None


def get_plugin_manager() -> EtkPluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        manager = EtkPluginManager()
        from etk_core import builtin_hooks

        manager.register_plugin(builtin_hooks, PluginInfo(CORE_PLUGIN_NAME, "etk-core", core_version()))
        manager.load_entry_points()
        manager.check_pending()
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the manager (tests, or after installing a plugin in-process)."""
    global _manager
    _manager = None
    from etk_core import registry

    registry.clear_cache()
