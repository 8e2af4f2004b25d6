"""Training checkpoints: model, optimiser, scheduler, RNG and data position, written atomically."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etk_core.errors import DamagedFileError
from etk_core.io import atomic_write_text, damaged_files, file_digests, fsync, link_if_identical, save_tensors

LATEST = "LATEST"
STATE_FILE = "state.json"
#: Key of state.json holding the sha256 of every other file of the checkpoint (not part of the loop state).
DIGESTS_KEY = "files"
#: Test hook: "N:K" makes the N-th checkpoint this process writes SIGKILL it at point K (1: after the
#: weights, 2: after the optimiser state, 3: after the folder's rename, 4: after LATEST), so the kill tests
#: can stop a writer between two files (see tests/test_kill.py).
KILL_HOOK = "ETK_TEST_KILL_IN_CHECKPOINT"
_CHECKPOINT_NAME = re.compile(r"(?:.+-)?step-\d{7}")
_written = {"checkpoints": 0}


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
                    algorithm_state: dict[str, Any] | None = None, prefix: str = "", keep: int = 1,
                    same_as: list[tuple[Path, str]] | None = None) -> Path:
    """Write `folder/step-N` completely under a temporary name, rename it, then point LATEST at it.

    With `shard` (one of several processes that each hold a part of the model and optimiser), every process
    calls this: the `main` one creates the temporary folder, each writes its own `model-SHARD.safetensors`
    and `training-SHARD.pt` (with its own RNG state), and the main one publishes the folder once all have
    written (`barrier` waits for every process). `rng_states`: the RNG states of every data-parallel process,
    when one process writes for all (their dropout draws differ). `modules`: extra trainable modules by name,
    each (module, optimiser, scheduler); `algorithm_state`: the algorithm's own state (tensors and plain
    values), written by the main process; `prefix` goes before `step-N` (a stage's name); `keep`: how many
    checkpoints to keep (the newest); `same_as`: files (path, sha256) that may hold the same weights, e.g. the
    run's artifact, linked instead of stored twice. A finished stage's checkpoint holds no optimiser state:
    a resume never trains that stage again."""
    import torch

    name = f"{prefix}step-{state['step']:07d}"
    tmp = folder / f".{name}.tmp"
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        _drop_stale_temps(folder)
        tmp.mkdir()
    barrier()
    suffix = f"-{shard}" if shard else ""
    tensors = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()
               if isinstance(value, torch.Tensor)}  # (megatron layers add `_extra_state` entries: None)
    tensors.update(_module_tensors(modules))
    written = [tmp / f"model{suffix}.safetensors", tmp / f"training{suffix}.pt"]
    save_tensors(tensors, written[0])
    _kill_hook(1)
    rng = rng_states if rng_states is not None else rng_state()
    if state.get("done"):
        torch.save({"rng": rng}, written[1])
    else:
        extra = {name: {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
                 for name, (_, opt, sched) in (modules or {}).items()}
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng,
                    "modules": extra}, written[1])
    _kill_hook(2)
    if main and algorithm_state is not None:
        torch.save(algorithm_state, tmp / ALGORITHM_FILE)
        written.append(tmp / ALGORITHM_FILE)
    _fsync(written)
    barrier()
    final = folder / name
    if main:
        _publish(folder, tmp, name, state, keep=keep, same_as=same_as)
    return final


def _kill_hook(file: int) -> None:
    """See KILL_HOOK: the count of checkpoints advances at the first point of each."""
    hook = os.environ.get(KILL_HOOK)
    if not hook:
        return
    if file == 1:
        _written["checkpoints"] += 1
    number, after = (int(part) for part in hook.split(":"))
    if _written["checkpoints"] == number and file == after:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _drop_stale_temps(folder: Path) -> None:
    """Remove the temporary folders of checkpoints whose writer was killed."""
    for stale in folder.glob(".*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def save_marker(folder: Path, state: dict[str, Any], algorithm_state: dict[str, Any], name: str,
                keep: int = 1) -> Path:
    """A checkpoint of a stage that trains nothing (it computed a selection, scores): the loop state, the
    algorithm's state and the main process's RNG (the replicas' agree before training), published like any
    checkpoint."""
    import torch

    tmp = folder / f".{name}.tmp"
    folder.mkdir(parents=True, exist_ok=True)
    _drop_stale_temps(folder)
    tmp.mkdir()
    torch.save(algorithm_state, tmp / ALGORITHM_FILE)
    torch.save({"rng": rng_state()}, tmp / "training.pt")  # the next stage starts from these draws
    _fsync([tmp / ALGORITHM_FILE, tmp / "training.pt"])
    return _publish(folder, tmp, name, state, keep=keep)


def _publish(folder: Path, tmp: Path, name: str, state: dict[str, Any], keep: int = 1,
             same_as: list[tuple[Path, str]] | None = None) -> Path:
    """Add the loop state and the files' digests, rename the complete folder into place, point LATEST at it,
    drop all but the newest `keep` checkpoints."""
    digests = file_digests(tmp)
    weights = tmp / "model.safetensors"
    if same_as and "model.safetensors" in digests:
        link_if_identical(weights, digests["model.safetensors"], same_as)
    (tmp / STATE_FILE).write_text(json.dumps({**state, DIGESTS_KEY: digests}, indent=1), encoding="utf-8")
    _fsync([tmp / STATE_FILE])
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _kill_hook(3)
    atomic_write_text(folder / LATEST, name)
    _kill_hook(4)
    older = [path for path in checkpoints(folder) if path.name != name]
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync(paths: list[Path]) -> None:
    for path in paths:
        fsync(path)


def _order(path: Path) -> tuple[int, int, int, float]:
    """Where a checkpoint stands in its run: stage, step, finished; unreadable ones first (by time)."""
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        return (int(state.get("stage_index", 0)), int(state["step"]), int(bool(state.get("done"))), 0.0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return (-1, -1, -1, path.stat().st_mtime if path.exists() else 0.0)


def checkpoints(folder: Path) -> list[Path]:
    """The published checkpoint folders in `folder`, oldest first."""
    found = [path for path in folder.glob("*step-*") if path.is_dir() and _CHECKPOINT_NAME.fullmatch(path.name)]
    return sorted(found, key=_order)


def check_checkpoint(path: Path) -> None:
    """Raise DamagedFileError naming the first file of a checkpoint that is unreadable, missing or does not
    match the digest its state.json records (checkpoints written before digests: only state.json is read)."""
    file = path / STATE_FILE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError("not a checkpoint state")
    except (OSError, ValueError) as exc:
        raise DamagedFileError(f"{file}: damaged checkpoint state ({type(exc).__name__})") from None
    wrong = damaged_files(path, state.get(DIGESTS_KEY) or {})
    if wrong:
        raise DamagedFileError(f"{path / wrong[0]}: damaged checkpoint file ({wrong[1]})")


def latest_checkpoint(folder: Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """The newest intact checkpoint in `folder` (None where there is none yet). Where LATEST names one
    that is missing or damaged, an older intact one (`warn` says which and why); where none is intact,
    DamagedFileError saying how to restart."""
    pointer = folder / LATEST
    found = checkpoints(folder)
    if not pointer.is_file() and not found:
        return None
    named = pointer.read_text(encoding="utf-8", errors="replace").strip() if pointer.is_file() else ""
    candidates = [path for path in reversed(found) if path.name != named]
    if named and _CHECKPOINT_NAME.fullmatch(named):
        candidates.insert(0, folder / named)
    problems = []
    if named and not _CHECKPOINT_NAME.fullmatch(named):
        problems.append(f"{pointer}: damaged (names no checkpoint)")
    for path in candidates:
        try:
            if not path.is_dir():
                raise DamagedFileError(f"{pointer} names {named}, which is missing")
            check_checkpoint(path)
        except DamagedFileError as exc:
            problems.append(str(exc))
            continue
        if problems and warn:
            warn(f"{problems[0]}; resuming from the older intact checkpoint {path}")
        return path
    run = folder.parent
    reason = problems[0] if problems else f"{pointer}: names no checkpoint ({named!r})"
    raise DamagedFileError(f"{reason}, and no intact checkpoint is left; start again without --resume "
                           f"(remove {run} or choose another --output)")


def load_algorithm_state(path: Path) -> dict[str, Any]:
    """The algorithm's own state saved with a checkpoint (empty when it saved none)."""
    import torch

    file = path / ALGORITHM_FILE
    try:
        return torch.load(file, weights_only=True) if file.is_file() else {}
    except Exception as exc:  # see load_checkpoint
        raise _damaged(file, exc) from None


def restore_rng(path: Path, shard: str | None = None, rng_index: int = 0) -> None:
    """Set this process's RNG to what a checkpoint saved (of `shard`; of process `rng_index` where one process
    saved them all): a stage that starts after a finished one draws as it would have without a resume."""
    import torch

    file = path / f"training{'-' + shard if shard else ''}.pt"
    if file.is_file():
        try:
            rng = torch.load(file, weights_only=True)["rng"]
        except Exception as exc:  # see load_checkpoint
            raise _damaged(file, exc) from None
        _set_rng_state(rng[rng_index] if isinstance(rng, list) else rng)


def read_state(path: Path) -> dict[str, Any]:
    """The loop state (stage, step, stream positions, best metrics) of a checkpoint."""
    file = path / STATE_FILE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedFileError(f"{file}: damaged checkpoint state ({type(exc).__name__}); start again "
                               f"without --resume") from None
    state.pop(DIGESTS_KEY, None)
    return state


def _damaged(file: Path, exc: Exception) -> DamagedFileError:
    return DamagedFileError(f"{file}: damaged checkpoint file ({type(exc).__name__}); start again without "
                            f"--resume (remove {file.parent.parent.parent} or choose another --output)")


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, shard: str | None = None,
                    rng_index: int = 0, modules: dict[str, tuple[Any, Any, Any]] | None = None) -> dict[str, Any]:
    """Restore model, optimiser, scheduler, extra `modules` and RNG (of `shard`, see `save_checkpoint`; of
    process `rng_index` where one process saved them all) from a checkpoint; return its loop state."""
    import torch
    from safetensors.torch import load_file

    from etk_core.errors import EtkError

    suffix = f"-{shard}" if shard else ""
    weights, training = path / f"model{suffix}.safetensors", path / f"training{suffix}.pt"
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for a cut or garbled file
        raise _damaged(weights, exc) from None
    own = {key: value for key, value in tensors.items() if not key.startswith(MODULE_PREFIX)}
    result = model.load_state_dict(own, strict=False)
    missing = [key for key in result.missing_keys if not key.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise EtkError(f"{path}: checkpoint does not match the model (missing {missing[:3]}, "
                       f"unexpected {result.unexpected_keys[:3]}); resume with the run's own config")
    try:
        extra = torch.load(training, weights_only=True)
    except Exception as exc:  # a cut zip archive, or a pickle with anything but tensors and plain values
        raise _damaged(training, exc) from None
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
