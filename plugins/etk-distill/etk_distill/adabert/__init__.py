"""`adabert`: AdaBERT (Chen et al., IJCAI 2020): a differentiable search of a small CNN student, distilled
from a fine-tuned teacher, then the derived CNN fine-tuned (see `algorithm.AdaBert`).

Modules: `genotype` (the search space, costs, genotypes; plain Python), `ops` and `cells` (the candidate
operations and the cells), `encoder` (the supernet and the derived CNN, and their transformers config,
model_type `etk-adabert`), `supernet` (architecture weights, Gumbel-softmax, per-depth heads), `probes` (the
teacher's layer probes), `backbone` (`--model adabert-cnn`), `algorithm` (`--algo adabert`).

An artifact's `encoder/config.json` has model_type `etk-adabert`, which transformers' AutoConfig only knows
once `config.register_config()` ran; `etk_core.artifact.load_artifact` asks AutoConfig before it asks the
backbone. `register_config_on_import()` (cheap: it imports nothing heavy) makes the registration happen as
soon as transformers' auto-config module is imported, in any process that loaded the plugin.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any

#: The transformers module whose AutoConfig must know `etk-adabert`.
AUTO_CONFIG_MODULE = "transformers.models.auto.configuration_auto"


def register_config_on_import() -> None:
    """Register the `etk-adabert` config with AutoConfig now if transformers' auto-config module is loaded,
    else right after it is first imported (idempotent)."""
    if AUTO_CONFIG_MODULE in sys.modules:
        from etk_distill.adabert.config import register_config

        register_config()
        return
    if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds transformers' auto-config module with the other finders and wraps its loader so that the
    registration runs once the module has executed; then steps out of the import system."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != AUTO_CONFIG_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        from etk_distill.adabert.config import register_config

        register_config(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the wrapped loader
        return getattr(self.loader, name)
