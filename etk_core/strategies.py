"""The built-in execution strategy: one process on CPU or one GPU, through accelerate."""

from __future__ import annotations

from typing import Any

from etk_core.errors import ConfigError
from etk_core.interfaces import Strategy


def use_cuda(device: str) -> bool:
    """Whether to run on CUDA for a `train.device` setting."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use --set train.device=cpu")
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


class SingleProcess(Strategy):
    """One process on the CPU or a single GPU (mixed precision where the device supports it)."""

    name = "single"
    description = "one process on the CPU or one GPU"

    def accelerator(self) -> Any:
        from accelerate import Accelerator

        cuda = use_cuda(self.train["device"])
        precision = self.train["precision"]
        if precision == "fp16" and not cuda:
            raise ConfigError("train.precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]
        return Accelerator(cpu=not cuda, mixed_precision=mixed)
