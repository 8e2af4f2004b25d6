"""Typed registries of components collected through the registration hooks."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any

from etk_core.errors import DuplicateComponentError, UnknownComponentError

logger = logging.getLogger("etk.registry")

#: kind -> hook that registers it
KINDS: dict[str, str] = {
    "readers": "etk_register_readers",
    "datasets": "etk_register_datasets",
    "models": "etk_register_models",
    "apps": "etk_register_apps",
    "algorithms": "etk_register_algorithms",
    "strategies": "etk_register_strategies",
    "exporters": "etk_register_exporters",
}
KIND_ALIASES = {"algos": "algorithms", "algo": "algorithms", "model": "models", "app": "apps",
                "reader": "readers", "dataset": "datasets", "strategy": "strategies", "exporter": "exporters"}

#: Names that first-party plugins provide, so a missing plugin can be named in the error.
FIRST_PARTY: dict[str, dict[str, str]] = {
    "apps": {n: "etk-apps" for n in ("text_classify", "text_match", "mrc", "sequence_labeling")},
    "algorithms": {
        **{n: "etk-featuretl" for n in ("fs", "sp", "sp_adv", "drss", "drss_adv")},
        **{n: "etk-instancetl" for n in ("ruder_plank", "rtl", "mgtl", "tgt_only", "src_only", "mixed", "tl_base")},
        **{n: "etk-distill" for n in ("kd", "pkd", "distilbert", "tinybert", "adabert", "metakd")},
        **{n: "etk-meta" for n in ("metaft", "metadtl")},
    },
    "models": {
        **{n: "etk-zoo" for n in ("minilm-l6", "hf", "bert-tiny", "bert-mini", "bert-small",
                                   "bert-medium", "bert-base", "bert-large")},
        "rsa-bert": "etk-kernels",
    },
}


@dataclass(frozen=True)
class Component:
    """A registered component class and the plugin that registered it."""

    name: str
    cls: type[Any]
    plugin: str

    @property
    def description(self) -> str:
        return getattr(self.cls, "description", "") or (self.cls.__doc__ or "").strip().split("\n")[0]


def normalise_kind(kind: str) -> str:
    """Map aliases such as `algos` to the registry kind."""
    kind = KIND_ALIASES.get(kind, kind)
    if kind not in KINDS:
        message = f"unknown component kind {kind!r}; choose one of: {', '.join(KINDS)}"
        raise UnknownComponentError(message)
    return kind


class Registry:
    """All components of one kind, keyed by name."""

    def __init__(self, kind: str, components: dict[str, Component]) -> None:
        self.kind = kind
        self.components = components

    def names(self) -> list[str]:
        return sorted(self.components)

    def get(self, name: str) -> type[Any]:
        """The component class called `name`, or an error listing what is installed."""
        if name in self.components:
            return self.components[name].cls
        singular = self.kind.rstrip("s") if self.kind != "strategies" else "strategy"
        installed = ", ".join(self.names()) or "none"
        package = FIRST_PARTY.get(self.kind, {}).get(name)
        if package:
            message = (f"{singular} {name!r} is provided by {package}, which is not installed; "
                       f"run: pip install {package}")
        else:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            message = f"unknown {singular} {name!r}{hint}; installed: {installed}"
        raise UnknownComponentError(message)


def _collect(kind: str) -> Registry:
    from etk_core.plugins import get_plugin_manager

    manager = get_plugin_manager()
    hook_caller = getattr(manager.hook, KINDS[kind])
    components: dict[str, Component] = {}
    # Built-ins first, then plugins in registration order, so duplicate errors read naturally.
    for impl in reversed(hook_caller.get_hookimpls()):
        plugin_name = impl.plugin_name
        try:
            classes = impl.function() or []
        except Exception as exc:  # a broken hook is reported, the rest still works
            logger.warning("plugin %r failed in %s and is skipped: %s: %s",
                           plugin_name, KINDS[kind], type(exc).__name__, exc)
            continue
        for cls in classes:
            name = getattr(cls, "name", None)
            if not name:
                logger.warning("plugin %r registered %r without a `name`; skipped", plugin_name, cls)
                continue
            if name in components:
                first = components[name].plugin
                message = (f"{kind[:-1] if kind != 'strategies' else 'strategy'} {name!r} is registered by "
                           f"both {first!r} and {plugin_name!r}; uninstall one or disable it with "
                           f"ETK_DISABLE_PLUGINS")
                raise DuplicateComponentError(message)
            components[name] = Component(name, cls, plugin_name)
    return Registry(kind, components)


_cache: dict[str, Registry] = {}


def get_registry(kind: str) -> Registry:
    """The registry of one kind (`apps`, `algorithms`, ...), built on first use."""
    kind = normalise_kind(kind)
    if kind not in _cache:
        _cache[kind] = _collect(kind)
    return _cache[kind]


def get_component(kind: str, name: str) -> type[Any]:
    """Shorthand for `get_registry(kind).get(name)`."""
    return get_registry(kind).get(name)


def clear_cache() -> None:
    """Drop collected registries (after plugins change)."""
    _cache.clear()
