"""The megatron training engine: this rank's pipeline stage with its tensor-parallel shards, trained with
megatron-core's schedules over microbatches, gradients averaged over the data-parallel replicas by
megatron's DDP, clipped by the global norm, and gathered back into the whole model for evaluation and
saving (so artifacts, export and serving do not care how the model was trained)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from etk_core.errors import ConfigError
from etk_core.megatron import backend
from etk_core.megatron.parallel_bert import build_stage, local_full_state
from etk_core.training.checkpoint import load_checkpoint, restore_rng, save_checkpoint
from etk_core.training.engine import TrainEngine


def microbatch_count(batch_size: int, wanted: int) -> int:
    """The most microbatches, up to `wanted`, that split `batch_size` evenly (megatron's schedules send
    tensors of one shape, so every microbatch has the same size)."""
    return max(count for count in range(1, min(wanted, batch_size) + 1) if batch_size % count == 0)


class MegatronEngine(TrainEngine):
    """One rank of a TP x PP x DP run (megatron-core on gloo or nccl)."""

    custom_steps = False  # the pipeline schedule runs the app model's own loss over microbatches

    def __init__(self, tp: int, pp: int, microbatches: int, precision: str, cuda: bool) -> None:
        backend.initialize(tp, pp)
        self.topo = backend.topology()
        self.data_world, self.data_rank = self.topo["dp"], self.topo["dp_rank"]
        self.is_main_process = dist.get_rank() == 0
        self.microbatches = microbatches or (2 * pp if pp > 1 else 1)
        self.precision = precision
        self._device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
        self.full: Any = None
        self.stage: Any = None
        self.ddp: Any = None
        self._zero_first = True

    # -- set-up ---------------------------------------------------------------------------------------
    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any], custom_step: bool = False) -> Any:
        self.stage = build_stage(model, self.topo).to(self._device)
        self.full = model.to(self._device) if self.is_main_process else None
        self.ddp = backend.wrap_data_parallel(self.stage, self.stage.config)
        # megatron's buffers give every parameter a gradient; the optimiser must skip the unused ones (e.g.
        # BERT's pooler under first-token pooling), as it does in one process, or weight decay moves them
        self._used: set[int] = set()
        for param in self.stage.parameters():
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(lambda tensor: self._used.add(id(tensor)))
        return make_optimizer(self.stage)

    def training_module(self) -> Any:
        return self.stage

    def device(self) -> Any:
        return self._device

    def autocast(self) -> Any:
        if self.precision == "bf16":
            return torch.autocast(self._device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- a step ---------------------------------------------------------------------------------------
    def forward_backward(self, batch: dict[str, Any] | None, scale: float, sync: bool,
                         step: Any = None) -> dict[str, float]:
        if step is not None:
            raise ConfigError("--strategy megatron runs the app model's own loss only; this algorithm's step "
                              "needs --strategy single or ddp")
        if self._zero_first:  # first micro-step after an optimiser step: clear megatron's gradient buffers
            self.ddp.zero_grad_buffer()
            self._used.clear()
            self._zero_first = False
        tensors = {key: value for key, value in batch.items() if isinstance(value, torch.Tensor)}
        size = next(iter(tensors.values())).shape[0]
        count = microbatch_count(size, self.microbatches)
        micro = size // count
        parts = [{key: value[i * micro:(i + 1) * micro].to(self._device) for key, value in tensors.items()}
                 for i in range(count)]
        sequence = tensors["attention_mask"].shape[1] if "attention_mask" in tensors else 1

        def step(iterator: Any, model: Any) -> tuple[Any, Callable[[Any], Any]]:
            with self.autocast():
                output = model(next(iterator))
            if isinstance(output, dict):  # the last stage: the app model's outputs
                output = output["loss"].float()
            # megatron divides what this returns by the microbatch count: the step's loss is their mean
            return output, lambda loss: (loss * scale, {"loss": loss.detach()})

        stored = backend.forward_backward(step=step, microbatches=iter(parts), model=self.ddp, count=count,
                                          seq_length=sequence, micro_batch_size=micro)
        loss = torch.zeros(1, dtype=torch.float64, device=self._device)
        if stored:
            loss += sum(float(item["loss"]) for item in stored) / len(stored)
        if self.topo["pp"] > 1:  # the loss lives on the last stage; rank 0 reports it
            dist.broadcast(loss, src=self.topo["pp_ranks"][-1], group=self.topo["pp_group"])
        if self.data_world > 1:  # reported: the loss of the whole (all replicas') batch
            dist.all_reduce(loss, group=self.topo["dp_group"])
            loss /= self.data_world
        return {"loss": float(loss)}

    def finish_gradients(self) -> None:
        backend.finish_gradients(self.ddp)
        params = list(self.stage.parameters())
        used = torch.tensor([float(id(param) in self._used) for param in params], device=self._device)
        if self.data_world > 1:  # used by any replica: every replica steps the same parameters
            dist.all_reduce(used, op=dist.ReduceOp.MAX, group=self.topo["dp_group"])
        for param, flag in zip(params, used.tolist()):
            # megatron's buffer, now averaged, is what the optimiser steps on
            param.grad = param.main_grad if param.requires_grad and flag else None
        self._zero_first = True

    def clip_grad_norm(self, max_norm: float) -> None:
        # sharded gradients count on every TP rank, replicated ones once; summed over TP and PP ranks
        squares = torch.zeros(1, dtype=torch.float64, device=self._device)
        grads = [param.grad for param in self.stage.parameters() if param.grad is not None]
        for param in self.stage.parameters():
            if param.grad is not None and (getattr(param, "tensor_model_parallel", False)
                                           or self.topo["tp_rank"] == 0):
                squares += param.grad.double().pow(2).sum()
        dist.all_reduce(squares, group=self.topo["model_group"])
        coefficient = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
        for grad in grads:
            grad.mul_(coefficient.to(grad.dtype))

    # -- the whole model ------------------------------------------------------------------------------
    def full_model(self) -> Any:
        topo = self.topo
        if topo["dp_rank"] != 0:  # every data-parallel replica holds the same weights: replica 0 gathers
            return None
        local = local_full_state(self.stage, topo)
        if topo["tp_rank"] != 0:
            return None
        pieces: list[Any] | None = [None] * topo["pp"] if self.is_main_process else None
        if topo["pp"] > 1:
            dist.gather_object(local, pieces, dst=topo["pp_ranks"][0], group=topo["pp_group"])
        elif pieces is not None:
            pieces[0] = local
        if not self.is_main_process:
            return None
        merged = {key: value for piece in pieces for key, value in piece.items()}
        self.full.load_state_dict(merged, strict=True)
        return self.full

    def save_checkpoint(self, folder: Path, optimizer: Any, scheduler: Any, state: dict[str, Any],
                        **extras: Any) -> None:
        # every rank writes its own shard of the weights and of the optimiser state
        save_checkpoint(folder, self.stage, optimizer, scheduler, state, shard=f"rank{dist.get_rank()}",
                        main=self.is_main_process, barrier=self.barrier, **extras)

    def load_checkpoint(self, path: Path, optimizer: Any, scheduler: Any, **extras: Any) -> dict[str, Any]:
        return load_checkpoint(path, self.stage, optimizer, scheduler, shard=f"rank{dist.get_rank()}", **extras)

    def restore_rng(self, path: Path) -> None:
        restore_rng(path, shard=f"rank{dist.get_rank()}")
        restore_rng(path)  # (a stage that trained nothing left the main process's only)

    def share(self, value: Any) -> Any:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()
