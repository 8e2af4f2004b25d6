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

from etk_core.training.checkpoint import load_checkpoint, restore_rng, rng_state, save_checkpoint

#: Runs an algorithm's step on the model being trained: (weighted total loss, named losses).
LossFunction = Callable[[Any], tuple[Any, dict[str, Any]]]


class TrainEngine(ABC):
    """One process's part in a training run."""

    #: How many data-parallel replicas there are, and which one this process is (each sees its own batches).
    data_world: int = 1
    data_rank: int = 0
    #: Whether this process writes the run folder.
    is_main_process: bool = True
    #: Whether the engine runs an algorithm's own step function (several streams, extra modules); an engine
    #: that cannot (megatron's pipelines run the model's own loss) is refused before the run starts.
    custom_steps: bool = True

    @abstractmethod
    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any], custom_step: bool = False) -> Any:
        """Set the model up for training (wrap, shard); return the optimiser `make_optimizer(module)` builds
        over the parameters this process trains. `custom_step`: an algorithm's step will call the model."""

    @abstractmethod
    def forward_backward(self, batch: dict[str, Any] | None, scale: float, sync: bool,
                         step: LossFunction | None = None) -> dict[str, float]:
        """Forward and backward with the loss multiplied by `scale`: the model's own `loss` on one collated
        `batch`, or, with `step`, the weighted total `step(model)` returns with its named parts. Returns the
        unscaled `loss` (and the named parts), averaged over the data-parallel replicas. `sync=False`: an
        accumulation micro-step (no gradient communication needed yet)."""

    def sync_gradients(self, parameters: list[Any]) -> None:
        """Average the gradients of parameters outside the prepared model (extra modules) over replicas."""
        return None

    def mean(self, tensor: Any) -> Any:
        """`tensor` averaged over the data-parallel replicas (for statistics every replica must share)."""
        return tensor

    def broadcast_module(self, module: Any) -> Any:
        """Give every replica the main process's weights of `module` (one made outside the model, e.g. a
        selector built lazily, whose random initialisation differs between replicas); returns it."""
        return module

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

    def save_checkpoint(self, folder: Path, optimizer: Any, scheduler: Any, state: dict[str, Any],
                        **extras: Any) -> None:
        """Write a training checkpoint (every process calls this); `extras`: see `checkpoint.save_checkpoint`."""
        if self.is_main_process:
            save_checkpoint(folder, self.training_module(), optimizer, scheduler, state, **extras)

    def load_checkpoint(self, path: Path, optimizer: Any, scheduler: Any, **extras: Any) -> dict[str, Any]:
        """Restore this process's training state from a checkpoint; return the loop state."""
        return load_checkpoint(path, self.training_module(), optimizer, scheduler, **extras)

    def restore_rng(self, path: Path) -> None:
        """Set this process's RNG from a checkpoint (the start of a stage after a finished one)."""
        restore_rng(path, rng_index=self.data_rank)

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
        #: Gradients reduced by etk rather than by DDP's wrapper: an algorithm's step may run the model on
        #: several batches before one backward (DDP's reducer expects one forward per backward).
        self.manual_sync = False

    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any], custom_step: bool = False) -> Any:
        self.manual_sync = custom_step and self.data_world > 1
        if not self.manual_sync:
            self.model, optimizer = self.accelerator.prepare(model, make_optimizer(model))
            return optimizer
        import torch.distributed as dist

        self.model = model.to(self.accelerator.device)
        for tensor in [*self.model.parameters(), *self.model.buffers()]:  # every replica starts alike
            dist.broadcast(tensor.data, src=0)
        return self.accelerator.prepare(make_optimizer(self.model))

    def forward_backward(self, batch: dict[str, Any] | None, scale: float, sync: bool,
                         step: LossFunction | None = None) -> dict[str, float]:
        from etk_core.training.evaluation import move_to

        acc = self.accelerator
        named: dict[str, Any] = {}
        # accumulation micro-steps keep their gradients local: one all-reduce per optimiser step
        local = sync or self.manual_sync
        with contextlib.nullcontext() if local else acc.no_sync(self.model):
            with acc.autocast():
                if step is None:
                    loss = self.model(**move_to(batch, acc.device))["loss"]
                else:
                    loss, named = step(self.model)
            acc.backward(loss * scale)
        values = {"loss": loss.detach(), **{key: value.detach() for key, value in named.items()}}
        if self.data_world > 1:  # reported: the loss of the whole (all replicas') batch
            values = {key: acc.reduce(value.float(), reduction="mean") for key, value in values.items()}
        return {key: float(value) for key, value in values.items()}

    def finish_gradients(self) -> None:
        if self.manual_sync:
            self.sync_gradients(list(self.model.parameters()))

    def sync_gradients(self, parameters: list[Any]) -> None:
        if self.data_world > 1:
            average_gradients(parameters)

    def mean(self, tensor: Any) -> Any:
        if self.data_world == 1:
            return tensor
        return self.accelerator.reduce(tensor.clone(), reduction="mean")

    def broadcast_module(self, module: Any) -> Any:
        if self.data_world > 1:
            import torch.distributed as dist

            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)
        return module

    def clip_grad_norm(self, max_norm: float) -> None:
        self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)

    def save_checkpoint(self, folder: Path, optimizer: Any, scheduler: Any, state: dict[str, Any],
                        **extras: Any) -> None:
        # the replicas hold the same weights and optimiser state, but each drew its own dropout masks
        rng = None
        if self.data_world > 1:
            from accelerate.utils import gather_object

            rng = gather_object([rng_state()])
        if self.is_main_process:
            save_checkpoint(folder, self.training_module(), optimizer, scheduler, state, rng_states=rng, **extras)

    def load_checkpoint(self, path: Path, optimizer: Any, scheduler: Any, **extras: Any) -> dict[str, Any]:
        return load_checkpoint(path, self.training_module(), optimizer, scheduler, rng_index=self.data_rank,
                               **extras)

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


def average_gradients(parameters: list[Any]) -> None:
    """All-reduce the gradients of `parameters` to their mean over the process group. A parameter no replica
    used keeps no gradient (so the optimiser skips it, as in one process); one used by some gets zeros
    elsewhere before the mean."""
    import torch
    import torch.distributed as dist

    if not parameters:
        return
    world = dist.get_world_size()
    used = torch.tensor([float(p.grad is not None) for p in parameters])
    dist.all_reduce(used, op=dist.ReduceOp.MAX)
    live = [p for p, flag in zip(parameters, used.tolist()) if flag]
    for param in live:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    if live:
        flat = torch.cat([param.grad.reshape(-1) for param in live])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for param in live:
            count = param.grad.numel()
            param.grad.copy_(flat[offset:offset + count].view_as(param.grad))
            offset += count
