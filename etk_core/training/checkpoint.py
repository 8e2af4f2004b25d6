"""Training checkpoints: model, optimiser, scheduler, RNG and data position, written atomically."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from etk_core.io import atomic_write_text

LATEST = "LATEST"


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> Path:
    """Write `folder/step-N` completely under a temporary name, rename it, then point LATEST at it."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['step']:07d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    save_file(tensors, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state()},
               tmp / "training.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    for path in tmp.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(folder / LATEST, name)
    for old in folder.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The last complete checkpoint in `folder`, if any."""
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.json").is_file() else None


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and RNG from a checkpoint; return its loop state."""
    import torch
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path / "model.safetensors")))
    extra = torch.load(path / "training.pt", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    _set_rng_state(extra["rng"])
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
