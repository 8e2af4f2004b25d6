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
    """This process's Python, NumPy and torch RNG states, as tensors and plain values (so that a checkpoint
    loads with `torch.load(weights_only=True)`: nothing in it can run code)."""
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])


#: Prefix of extra modules' weights in a checkpoint's safetensors file.
MODULE_PREFIX = "__module__."
ALGORITHM_FILE = "algorithm.pt"


def _module_tensors(modules: dict[str, tuple[Any, Any, Any]] | None) -> dict[str, Any]:
    import torch

    return {f"{MODULE_PREFIX}{name}.{key}": value.detach().contiguous().cpu()
            for name, (module, _, _) in (modules or {}).items()
            for key, value in module.state_dict().items() if isinstance(value, torch.Tensor)}


def save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], *,
                    shard: str | None = None, main: bool = True, barrier: Callable[[], None] = lambda: None,
                    rng_states: list[dict[str, Any]] | None = None,
                    modules: dict[str, tuple[Any, Any, Any]] | None = None,
                    algorithm_state: dict[str, Any] | None = None, prefix: str = "") -> Path:
    """Write `folder/step-N` completely under a temporary name, rename it, then point LATEST at it.

    With `shard` (one of several processes that each hold a part of the model and optimiser), every process
    calls this: the `main` one creates the temporary folder, each writes its own `model-SHARD.safetensors`
    and `training-SHARD.pt` (with its own RNG state), and the main one publishes the folder once all have
    written (`barrier` waits for every process). `rng_states`: the RNG states of every data-parallel process,
    when one process writes for all (their dropout draws differ). `modules`: extra trainable modules by name,
    each (module, optimiser, scheduler); `algorithm_state`: the algorithm's own state (tensors and plain
    values), written by the main process; `prefix` goes before `step-N` (a stage's name)."""
    import torch
    from safetensors.torch import save_file

    name = f"{prefix}step-{state['step']:07d}"
    tmp = folder / f".{name}.tmp"
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier()
    suffix = f"-{shard}" if shard else ""
    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()
               if isinstance(value, torch.Tensor)}  # (megatron layers add `_extra_state` entries: None)
    tensors.update(_module_tensors(modules))
    written = [tmp / f"model{suffix}.safetensors", tmp / f"training{suffix}.pt"]
    save_file(tensors, str(written[0]))
    rng = rng_states if rng_states is not None else rng_state()
    extra = {name: {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
             for name, (_, opt, sched) in (modules or {}).items()}
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng,
                "modules": extra}, written[1])
    if main and algorithm_state is not None:
        torch.save(algorithm_state, tmp / ALGORITHM_FILE)
        written.append(tmp / ALGORITHM_FILE)
    _fsync(written)
    barrier()
    final = folder / name
    if main:
        _publish(folder, tmp, name, state)
    return final


def save_marker(folder: Path, state: dict[str, Any], algorithm_state: dict[str, Any], name: str) -> Path:
    """A checkpoint of a stage that trains nothing (it computed a selection, scores): the loop state, the
    algorithm's state and the main process's RNG (the replicas' agree before training), published like any
    checkpoint."""
    import torch

    tmp = folder / f".{name}.tmp"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(algorithm_state, tmp / ALGORITHM_FILE)
    torch.save({"rng": rng_state()}, tmp / "training.pt")  # the next stage starts from these draws
    _fsync([tmp / ALGORITHM_FILE, tmp / "training.pt"])
    return _publish(folder, tmp, name, state)


def _publish(folder: Path, tmp: Path, name: str, state: dict[str, Any]) -> Path:
    """Add the loop state, rename the complete folder into place, point LATEST at it, drop older ones."""
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    _fsync([tmp / "state.json"])
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(folder / LATEST, name)
    for old in folder.glob("*step-*"):
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


def load_algorithm_state(path: Path) -> dict[str, Any]:
    """The algorithm's own state saved with a checkpoint (empty when it saved none)."""
    import torch

    file = path / ALGORITHM_FILE
    return torch.load(file, weights_only=True) if file.is_file() else {}


def restore_rng(path: Path, shard: str | None = None, rng_index: int = 0) -> None:
    """Set this process's RNG to what a checkpoint saved (of `shard`; of process `rng_index` where one process
    saved them all): a stage that starts after a finished one draws as it would have without a resume."""
    import torch

    file = path / f"training{'-' + shard if shard else ''}.pt"
    if file.is_file():
        rng = torch.load(file, weights_only=True)["rng"]
        _set_rng_state(rng[rng_index] if isinstance(rng, list) else rng)


def read_state(path: Path) -> dict[str, Any]:
    """The loop state (stage, step, stream positions, best metrics) of a checkpoint."""
    return json.loads((path / "state.json").read_text(encoding="utf-8"))


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, shard: str | None = None,
                    rng_index: int = 0, modules: dict[str, tuple[Any, Any, Any]] | None = None) -> dict[str, Any]:
    """Restore model, optimiser, scheduler, extra `modules` and RNG (of `shard`, see `save_checkpoint`; of
    process `rng_index` where one process saved them all) from a checkpoint; return its loop state."""
    import torch
    from safetensors.torch import load_file

    from etk_core.errors import EtkError

    suffix = f"-{shard}" if shard else ""
    tensors = load_file(str(path / f"model{suffix}.safetensors"))
    own = {key: value for key, value in tensors.items() if not key.startswith(MODULE_PREFIX)}
    result = model.load_state_dict(own, strict=False)
    missing = [key for key in result.missing_keys if not key.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise EtkError(f"{path}: checkpoint does not match the model (missing {missing[:3]}, "
                       f"unexpected {result.unexpected_keys[:3]}); resume with the run's own config")
    extra = torch.load(path / f"training{suffix}.pt", weights_only=True)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    saved_modules = extra.get("modules", {})
    for name, (module, opt, sched) in (modules or {}).items():
        if name not in saved_modules:
            raise EtkError(f"{path}: checkpoint has no module {name!r}; resume with the run's own config")
        start = f"{MODULE_PREFIX}{name}."
        module.load_state_dict({key[len(start):]: value for key, value in tensors.items() if key.startswith(start)})
        opt.load_state_dict(saved_modules[name]["optimizer"])
        sched.load_state_dict(saved_modules[name]["scheduler"])
    rng = extra["rng"]
    _set_rng_state(rng[rng_index] if isinstance(rng, list) else rng)
    return read_state(path)
