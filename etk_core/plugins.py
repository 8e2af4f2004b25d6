"""The plugin manager: built-ins first, then each `etk` entry point loaded on its own; it fills the registries.

A plugin that fails at any point (import, pluggy validation, an unknown hook, a hook that raises) is one
warning naming it and its version, and is recorded in `PluginInfo.failed`; the rest of etk keeps working.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from etk_core import hookspecs, registry
from etk_core.errors import DuplicateComponentError
from etk_core.registry import KINDS, Component, Registry, Unavailable, singular

logger = logging.getLogger("etk.plugins")

ENTRY_POINT_GROUP = "etk"
#: Comma-separated plugin names that are never loaded.
DISABLE_ENV = "ETK_DISABLE_PLUGINS"
#: When set, only these plugins load (comma-separated); set to "" for none but the built-ins.
LOAD_ENV = "ETK_LOAD_PLUGINS"
CORE_PLUGIN_NAME = "etk-core"
#: Longest exception text quoted in a one-line warning.
_REASON_CHARS = 240


@dataclass
class PluginInfo:
    """Where a plugin came from, and whether it failed (`failed`) or was switched off (`skipped`)."""

    name: str
    distribution: str
    version: str
    failed: str | None = None
    hooks: list[str] = field(default_factory=list)
    #: The environment variable that kept this installed plugin from loading (DISABLE_ENV or LOAD_ENV).
    skipped: str | None = None

    @property
    def label(self) -> str:
        """`plugin 'x' (etk-x 1.0)`, as warnings name it."""
        return f"plugin {self.name!r} ({self.distribution} {self.version})"

    def add_failure(self, reason: str) -> None:
        """Record one more failure (shown by `etk plugins`)."""
        if not self.failed:
            self.failed = reason
        elif reason not in self.failed.split("; "):
            self.failed = f"{self.failed}; {reason}"


def describe_error(exc: BaseException) -> str:
    """`Type: message` on one line, shortened: for warnings and `etk plugins`."""
    text = " ".join(str(exc).split())
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    try:
        dist = getattr(entry_point, "dist", None)
        if dist is None:
            return ("unknown", "unknown")
        return (dist.metadata["Name"] or "unknown", dist.version or "unknown")
    except Exception:  # broken metadata only costs the label
        return ("unknown", "unknown")


def core_version() -> str:
    """The installed version of etk-core."""
    try:
        return importlib.metadata.version("etk-core")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class EtkPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from, which failed and which were skipped."""

    def __init__(self) -> None:
        super().__init__("etk")
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        #: Installed entry points the environment switched off, by plugin name.
        self.skipped: dict[str, PluginInfo] = {}
        #: (plugin name, hook name) -> why that plugin's implementation of the hook raised.
        self.hook_failures: dict[tuple[str, str], str] = {}

    def label(self, name: str) -> str:
        """How warnings name the plugin registered as `name`."""
        info = self.infos.get(name)
        return info.label if info else f"plugin {name!r}"

    def _drop(self, info: PluginInfo, plugin: object | None, reason: str, fix: str) -> None:
        """Unregister a plugin that cannot work, warn once naming it, and record why."""
        if plugin is not None and self.get_plugin(info.name) is plugin:
            self.unregister(name=info.name)
        info.hooks = []
        info.add_failure(reason)
        self.infos.setdefault(info.name, info)
        logger.warning("%s failed to load and is skipped: %s; %s", info.label, reason, fix)

    def register_plugin(self, plugin: object, info: PluginInfo) -> bool:
        """Register one plugin module or object with its origin; False (and a warning) if pluggy refuses it."""
        taken = self.get_name(plugin)
        if taken is not None or self.has_plugin(info.name):
            reason = (f"it is the object plugin {taken!r} registered already" if taken is not None
                      else "another plugin has that name")
            self._drop(info, None, reason, f"uninstall one of them or set {DISABLE_ENV}={info.name}")
            return False
        try:
            self.register(plugin, name=info.name)
        except Exception as exc:  # pluggy validation: unknown argument names, historic hooks, ...
            self._drop(info, plugin, describe_error(exc), f"upgrade it or set {DISABLE_ENV}={info.name}")
            return False
        info.hooks = sorted(impl.name for impl in self.get_hookcallers(plugin) or [])
        self.infos[info.name] = info
        return True

    def _entry_points(self) -> Iterable[importlib.metadata.EntryPoint]:
        try:
            return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        except Exception as exc:  # broken metadata in site-packages must not take the host down
            logger.warning("cannot list the %r entry points, so no plugin loads: %s; check the installed "
                           "packages (pip check)", ENTRY_POINT_GROUP, describe_error(exc))
            return []

    def load_entry_points(self) -> None:
        """Load every `etk` entry point on its own; a broken one is a warning, not a crash."""
        blocked = _names_from_env(DISABLE_ENV) or set()
        allowed = _names_from_env(LOAD_ENV)
        for entry_point in self._entry_points():
            name = entry_point.name
            if self.has_plugin(name) or name in self.infos:
                continue
            distribution, version = _distribution_of(entry_point)
            info = PluginInfo(name, distribution, version)
            if name in blocked or (allowed is not None and name not in allowed):
                info.skipped = DISABLE_ENV if name in blocked else LOAD_ENV
                self.skipped[name] = info
                continue
            try:
                module = entry_point.load()
            except Exception as exc:  # a broken plugin must not take the host down
                self._drop(info, None, describe_error(exc), f"reinstall it or set {DISABLE_ENV}={name}")
                continue
            self.register_plugin(module, info)

    def drop_unknown_hooks(self) -> None:
        """Unregister, with a warning, each plugin implementing a hook etk does not specify; then check."""
        for hook_name, caller in list(vars(self.hook).items()):
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook or self.get_plugin(impl.plugin_name) is not impl.plugin:
                    continue
                info = self.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "unknown", "unknown")
                reason = f"it implements {hook_name!r}, which etk-core {core_version()} does not define"
                self._drop(info, impl.plugin, reason,
                           f"upgrade etk-core or the plugin, or set {DISABLE_ENV}={impl.plugin_name}")
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:  # not expected after the loop above; still not a crash
            logger.warning("plugin hooks do not match etk-core %s: %s", core_version(), describe_error(exc))

    def call_impl(self, hook_name: str, impl: pluggy.HookImpl, **kwargs: Any) -> tuple[bool, Any]:
        """Call one plugin's implementation of a hook: (True, result), or (False, None) with a warning naming
        the plugin, recorded for `etk plugins`, when it raised."""
        try:
            return True, impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as exc:  # one plugin's bug must not break the others
            self.record_hook_failure(impl.plugin_name, hook_name, describe_error(exc))
            return False, None

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook plugin by plugin, in registration order: (plugin name, result) for each that did not
        raise (see `call_impl`)."""
        results = []
        for impl in getattr(self.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            ok, result = self.call_impl(hook_name, impl, **kwargs)
            if ok:
                results.append((impl.plugin_name, result))
        return results

    def record_hook_failure(self, plugin_name: str, hook_name: str, reason: str) -> None:
        """Warn that a plugin failed in a hook (naming it and its version) and record it for `etk plugins`."""
        self.hook_failures[(plugin_name, hook_name)] = reason
        info = self.infos.get(plugin_name)
        if info is not None:
            info.add_failure(f"{hook_name}: {reason}")
        logger.warning("%s failed in %s and is skipped there: %s; upgrade it or set %s=%s",
                       self.label(plugin_name), hook_name, reason, DISABLE_ENV, plugin_name)

    def unavailable(self, hook_name: str) -> dict[str, Unavailable]:
        """Installed distributions whose plugin registers nothing through `hook_name`, and why."""
        out: dict[str, Unavailable] = {}
        for info in self.skipped.values():
            if info.skipped == DISABLE_ENV:
                why = Unavailable(info.name, f"is disabled by {DISABLE_ENV}",
                                  f"remove {info.name!r} from {DISABLE_ENV} to use it")
            else:
                why = Unavailable(info.name, f"is not in {LOAD_ENV}", f"add {info.name!r} to {LOAD_ENV} or unset it")
            out[info.distribution] = why
        for info in self.infos.values():
            if info.failed and not self.has_plugin(info.name):
                out[info.distribution] = Unavailable(info.name, f"failed to load ({info.failed})",
                                                     "see `etk plugins`; reinstall or upgrade it")
            elif (info.name, hook_name) in self.hook_failures:
                reason = self.hook_failures[(info.name, hook_name)]
                out[info.distribution] = Unavailable(info.name, f"failed in {hook_name} ({reason})",
                                                     "see `etk plugins`; reinstall or upgrade it")
        return out

    def build_registry(self, kind: str) -> Registry:
        """Collect one kind's components from every plugin, built-ins first (a failing hook is a warning)."""
        hook_name = KINDS[kind]
        components: dict[str, Component] = {}
        for plugin_name, classes in self.call_each(hook_name):
            if not isinstance(classes, list | tuple):
                if classes is not None:
                    self.record_hook_failure(plugin_name, hook_name,
                                             f"returned {type(classes).__name__}, not a list of classes")
                continue
            for cls in classes:
                name = getattr(cls, "name", None)
                if not name:
                    logger.warning("%s registered %r without a `name`; skipped", self.label(plugin_name), cls)
                    continue
                if name in components:
                    first = components[name].plugin
                    message = (f"{singular(kind)} {name!r} is registered by both {first!r} and {plugin_name!r}; "
                               f"uninstall one or disable it with {DISABLE_ENV}")
                    raise DuplicateComponentError(message)
                components[name] = Component(name, cls, plugin_name)
        return Registry(kind, components, self.unavailable(hook_name))


_manager: EtkPluginManager | None = None


def get_plugin_manager() -> EtkPluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        manager = EtkPluginManager()
        from etk_core import builtin_hooks

        manager.register_plugin(builtin_hooks, PluginInfo(CORE_PLUGIN_NAME, "etk-core", core_version()))
        manager.load_entry_points()
        manager.drop_unknown_hooks()
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the manager (tests, or after installing a plugin in-process)."""
    global _manager
    _manager = None
    registry.clear_cache()


def _build_registry(kind: str) -> Registry:
    return get_plugin_manager().build_registry(kind)


registry.set_source(_build_registry)
