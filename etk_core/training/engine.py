"""How one process takes part in training: which batches it sees, forward and backward, gradient
synchronisation and clipping, and the complete model for evaluation and saving.

The core loop (`etk_core.training.loop`) is written against `TrainEngine`; a strategy gives the engine
(`Strategy.engine`). `AccelerateEngine` serves the single-process and data-parallel strategies; the
megatron strategy has its own (`etk_core.megatron.engine`).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etk_core.training.checkpoint import load_checkpoint, rng_state, save_checkpoint


class TrainEngine(ABC):
    """One process's part in a training run."""

    #: How many data-parallel replicas there are, and which one this process is (each sees its own batches).
    data_world: int = 1
    data_rank: int = 0
    #: Whether this process writes the run folder.
    is_main_process: bool = True

    @abstractmethod
    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any]) -> Any:
        """Set the model up for training (wrap, shard); return the optimiser `make_optimizer(module)` builds
        over the parameters this process trains."""

    @abstractmethod
    def forward_backward(self, batch: dict[str, Any], scale: float, sync: bool) -> float:
        """Forward and backward over one collated batch with the loss multiplied by `scale`; return the
        unscaled loss, averaged over the data-parallel replicas. `sync=False`: an accumulation micro-step
        (no gradient communication needed yet)."""

    def finish_gradients(self) -> None:
        """Complete the gradients before the optimiser step (e.g. reduce them over replicas)."""
        return None

    @abstractmethod
    def clip_grad_norm(self, max_norm: float) -> None:
        """Scale the gradients so that their global norm is at most `max_norm`."""

    @abstractmethod
    def training_module(self) -> Any:
        """The module this process trains (the prepared model), for train/eval mode and checkpoints."""

    @abstractmethod
    def full_model(self) -> Any | None:
        """The complete model with the current weights, for evaluating and saving; None on processes that
        do not evaluate. Every process must call it (gathering may need them all)."""

    def save_checkpoint(self, folder: Path, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
        """Write a training checkpoint (every process calls this)."""
        if self.is_main_process:
            save_checkpoint(folder, self.training_module(), optimizer, scheduler, state)

    def load_checkpoint(self, path: Path, optimizer: Any, scheduler: Any) -> dict[str, Any]:
        """Restore this process's training state from a checkpoint; return the loop state."""
        return load_checkpoint(path, self.training_module(), optimizer, scheduler)

    def share(self, value: Any) -> Any:
        """`value` as the main process has it, on every process (for decisions all must agree on)."""
        return value

    def barrier(self) -> None:
        """Wait for every process of the run."""
        return None

    def device(self) -> Any:
        """Where batches go."""
        return "cpu"

    def autocast(self) -> Any:
        """The mixed-precision context of forward passes."""
        return contextlib.nullcontext()


class AccelerateEngine(TrainEngine):
    """One process or data parallel through an `accelerate.Accelerator` (DDP, comm hooks, mixed precision)."""

    def __init__(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        self.data_world = accelerator.num_processes
        self.data_rank = accelerator.process_index
        self.is_main_process = accelerator.is_main_process
        self.model: Any = None

    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any]) -> Any:
        self.model, optimizer = self.accelerator.prepare(model, make_optimizer(model))
        return optimizer

    def forward_backward(self, batch: dict[str, Any], scale: float, sync: bool) -> float:
        from etk_core.training.evaluation import move_to

        acc = self.accelerator
        # accumulation micro-steps keep their gradients local: one all-reduce per optimiser step
        with contextlib.nullcontext() if sync else acc.no_sync(self.model):
            with acc.autocast():
                loss = self.model(**move_to(batch, acc.device))["loss"]
            acc.backward(loss * scale)
        loss = loss.detach()
        if self.data_world > 1:  # reported: the loss of the whole (all replicas') batch
            loss = acc.reduce(loss, reduction="mean")
        return float(loss)

    def clip_grad_norm(self, max_norm: float) -> None:
        self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)

    def save_checkpoint(self, folder: Path, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
        # the replicas hold the same weights and optimiser state, but each drew its own dropout masks
        rng = None
        if self.data_world > 1:
            from accelerate.utils import gather_object

            rng = gather_object([rng_state()])
        if self.is_main_process:
            save_checkpoint(folder, self.training_module(), optimizer, scheduler, state, rng_states=rng)

    def load_checkpoint(self, path: Path, optimizer: Any, scheduler: Any) -> dict[str, Any]:
        return load_checkpoint(path, self.training_module(), optimizer, scheduler, rng_index=self.data_rank)

    def training_module(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    def full_model(self) -> Any:
        # every data-parallel replica holds the whole model; each evaluates (they agree)
        return self.accelerator.unwrap_model(self.model)

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def device(self) -> Any:
        return self.accelerator.device

    def autocast(self) -> Any:
        return self.accelerator.autocast()
