"""Training checkpoints: model, optimiser, scheduler, RNG and data position, written atomically."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etk_core.io import atomic_write_text

LATEST = "LATEST"


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy and torch RNG states."""
    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], *,
                    shard: str | None = None, main: bool = True, barrier: Callable[[], None] = lambda: None,
                    rng_states: list[dict[str, Any]] | None = None) -> Path:
    """Write `folder/step-N` completely under a temporary name, rename it, then point LATEST at it.

    With `shard` (one of several processes that each hold a part of the model and optimiser), every process
    calls this: the `main` one creates the temporary folder, each writes its own `model-SHARD.safetensors`
    and `training-SHARD.pt` (with its own RNG state), and the main one publishes the folder once all have
    written (`barrier` waits for every process). `rng_states`: the RNG states of every data-parallel process,
    when one process writes for all (their dropout draws differ)."""
    import torch
    from safetensors.torch import save_file

    name = f"step-{state['step']:07d}"
    tmp = folder / f".{name}.tmp"
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier()
    suffix = f"-{shard}" if shard else ""
    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()
               if isinstance(value, torch.Tensor)}  # (megatron layers add `_extra_state` entries: None)
    written = [tmp / f"model{suffix}.safetensors", tmp / f"training{suffix}.pt"]
    save_file(tensors, str(written[0]))
    rng = rng_states if rng_states is not None else rng_state()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng}, written[1])
    _fsync(written)
    barrier()
    final = folder / name
    if main:
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        _fsync([tmp / "state.json"])
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write_text(folder / LATEST, name)
        for old in folder.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def latest_checkpoint(folder: Path) -> Path | None:
    """The last complete checkpoint in `folder`, if any."""
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.json").is_file() else None


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, shard: str | None = None,
                    rng_index: int = 0) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and RNG (of `shard`, see `save_checkpoint`; of process `rng_index`
    where one process saved them all) from a checkpoint; return its loop state."""
    import torch
    from safetensors.torch import load_file

    suffix = f"-{shard}" if shard else ""
    result = model.load_state_dict(load_file(str(path / f"model{suffix}.safetensors")), strict=False)
    missing = [key for key in result.missing_keys if not key.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"{path}: checkpoint does not match the model (missing {missing[:3]}, "
                           f"unexpected {result.unexpected_keys[:3]})")
    extra = torch.load(path / f"training{suffix}.pt", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    rng = extra["rng"]
    _set_rng_state(rng[rng_index] if isinstance(rng, list) else rng)
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
