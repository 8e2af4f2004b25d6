"""The core's own components, registered through the same hooks as any plugin."""

from __future__ import annotations

from typing import Any

from etk_core.hookspecs import hookimpl


@hookimpl
def etk_register_readers() -> list[type[Any]]:
    from etk_core.data.readers import BUILTIN_READERS

    return list(BUILTIN_READERS)


@hookimpl
def etk_register_datasets() -> list[type[Any]]:
    from etk_core.data.datasets import BUILTIN_DATASETS

    return list(BUILTIN_DATASETS)


@hookimpl
def etk_register_algorithms() -> list[type[Any]]:
    from etk_core.algorithms.finetune import Finetune

    return [Finetune]


@hookimpl
def etk_register_strategies() -> list[type[Any]]:
    from etk_core.strategies import DataParallel, Megatron, SingleProcess

    return [SingleProcess, DataParallel, Megatron]


@hookimpl
def etk_register_exporters() -> list[type[Any]]:
    from etk_core.export.onnx_export import OnnxExporter

    return [OnnxExporter]
