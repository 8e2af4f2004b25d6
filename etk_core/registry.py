"""Typed registries of components: data the plugin host (`etk_core.plugins`) fills through the registration
hooks. This module imports nothing from the host; the host installs the function that builds a registry."""

from __future__ import annotations

import difflib
import importlib.metadata
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from etk_core.errors import UnknownComponentError

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


@dataclass(frozen=True)
class Unavailable:
    """Why an installed distribution's plugin registers nothing: `reason` and `fix` end one line."""

    plugin: str
    reason: str
    fix: str


def canonical_distribution(name: str) -> str:
    """A distribution name as packaging compares it (`Etk_Apps` and `etk-apps` are one)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_installed(distribution: str) -> bool:
    """Whether the distribution `distribution` is installed in this environment."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def singular(kind: str) -> str:
    """`algorithms` -> `algorithm`, `strategies` -> `strategy`."""
    return "strategy" if kind == "strategies" else kind.rstrip("s")


class Registry:
    """All components of one kind, keyed by name; `unavailable` (by distribution) explains missing ones."""

    def __init__(self, kind: str, components: dict[str, Component],
                 unavailable: Mapping[str, Unavailable] | None = None) -> None:
        self.kind = kind
        self.components = components
        self.unavailable = {canonical_distribution(dist): why for dist, why in (unavailable or {}).items()}

    def names(self) -> list[str]:
        return sorted(self.components)

    def get(self, name: str) -> type[Any]:
        """The component class called `name`, or an error saying why it is missing and what is installed."""
        if name in self.components:
            return self.components[name].cls
        raise UnknownComponentError(self.missing(name))

    def missing(self, name: str) -> str:
        """The one-line message for a name nothing registers here."""
        what = f"{singular(self.kind)} {name!r}"
        package = FIRST_PARTY.get(self.kind, {}).get(name)
        why = self.unavailable.get(canonical_distribution(package)) if package else None
        if why:
            return f"{what} is provided by plugin {why.plugin!r} ({package}), which {why.reason}; {why.fix}"
        if package and not is_installed(package):
            return f"{what} is provided by {package}, which is not installed; run: pip install {package}"
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {what}{hint}; installed: {', '.join(self.names()) or 'none'}"


#: Builds the registry of one kind; `etk_core.plugins` (imported with `etk_core`) installs it.
RegistrySource = Callable[[str], Registry]
_source: RegistrySource | None = None
_cache: dict[str, Registry] = {}


def set_source(source: RegistrySource | None) -> None:
    """Install the function that builds a kind's registry, dropping what was built before."""
    global _source
    _source = source
    _cache.clear()


def get_registry(kind: str) -> Registry:
    """The registry of one kind (`apps`, `algorithms`, ...), built on first use."""
    kind = normalise_kind(kind)
    if kind not in _cache:
        if _source is None:
            raise RuntimeError("no plugin host has installed a registry source; import etk_core.plugins first")
        _cache[kind] = _source(kind)
    return _cache[kind]


def get_component(kind: str, name: str) -> type[Any]:
    """Shorthand for `get_registry(kind).get(name)`."""
    return get_registry(kind).get(name)


def clear_cache() -> None:
    """Drop collected registries (after plugins change)."""
    _cache.clear()
