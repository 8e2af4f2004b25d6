"""Everything etk takes from megatron-core, in one place: process groups, the tensor-parallel layers, the
pipeline schedules, megatron's data-parallel gradient buffers, and the CPU compatibility layer.

megatron-core assumes CUDA in several places. On a machine without CUDA, `apply_cpu_compat` redirects
those to the CPU (the facts: ../shared/specs/megatron-cpu.md): `torch.cuda.current_device` answers the
CPU device, `torch.cuda.synchronize` does nothing, and `cuda_devices_on_cpu()` (a TorchFunctionMode held
around megatron's schedules) rewrites the `device="cuda"` that the schedules hard-code. etk does not use
megatron's CUDA RNG tracker (attention dropout on a rank's own heads uses its own CPU generator), its
distributed optimizer or its gradient clipping, which need CUDA tensors.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch

with warnings.catch_warnings():  # "Transformer Engine and Apex are not installed": expected, etk uses neither
    warnings.simplefilter("ignore")
    from megatron.core import parallel_state
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.distributed.finalize_model_grads import finalize_model_grads
    from megatron.core.enums import ModelType
    from megatron.core.pipeline_parallel import get_forward_backward_func
    from megatron.core.tensor_parallel import (
        ColumnParallelLinear,
        RowParallelLinear,
        VocabParallelEmbedding,
        set_tensor_model_parallel_attributes,
    )
    from megatron.core.transformer import TransformerConfig

__all__ = ["MODEL_TYPE", "ColumnParallelLinear", "RowParallelLinear", "VocabParallelEmbedding", "apply_cpu_compat",
           "cuda_devices_on_cpu", "destroy", "finish_gradients", "forward_backward", "initialize", "layer_config",
           "set_tensor_model_parallel_attributes", "topology", "wrap_data_parallel"]

#: What megatron's schedules call a model that is one encoder (as etk's stages are).
MODEL_TYPE = ModelType.encoder_or_decoder

_COMPAT_APPLIED = False


def apply_cpu_compat() -> None:
    """Point megatron's CUDA-only calls at the CPU (only when there is no CUDA; idempotent)."""
    global _COMPAT_APPLIED
    if _COMPAT_APPLIED or torch.cuda.is_available():
        return
    torch.cuda.current_device = lambda: torch.device("cpu")  # type: ignore[assignment]
    torch.cuda.synchronize = lambda *args, **kwargs: None  # type: ignore[assignment]
    _COMPAT_APPLIED = True


class _CpuDevices(torch.overrides.TorchFunctionMode):
    """Rewrites a `device="cuda"` argument to the CPU (megatron's schedules hard-code it)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        device = kwargs.get("device")
        if device is not None and str(device).startswith("cuda"):
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


def cuda_devices_on_cpu() -> contextlib.AbstractContextManager:
    """A context in which megatron code that names CUDA devices runs on the CPU (a no-op with CUDA)."""
    return contextlib.nullcontext() if torch.cuda.is_available() else _CpuDevices()


def initialize(tp: int, pp: int) -> None:
    """Join the process group from the torch.distributed environment and build megatron's TP/PP/DP groups."""
    apply_cpu_compat()
    if not torch.distributed.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp)


def destroy() -> None:
    """Tear the groups down (tests run several layouts in one process)."""
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def topology() -> dict[str, Any]:
    """This rank's place: sizes and ranks of the TP, PP and DP groups, and the groups themselves."""
    return {
        "tp": parallel_state.get_tensor_model_parallel_world_size(),
        "tp_rank": parallel_state.get_tensor_model_parallel_rank(),
        "pp": parallel_state.get_pipeline_model_parallel_world_size(),
        "pp_rank": parallel_state.get_pipeline_model_parallel_rank(),
        "dp": parallel_state.get_data_parallel_world_size(),
        "dp_rank": parallel_state.get_data_parallel_rank(),
        "tp_group": parallel_state.get_tensor_model_parallel_group(),
        "pp_group": parallel_state.get_pipeline_model_parallel_group(),
        "model_group": parallel_state.get_model_parallel_group(),
        "dp_group": parallel_state.get_data_parallel_group(),
        "pp_ranks": torch.distributed.get_process_group_ranks(parallel_state.get_pipeline_model_parallel_group()),
    }


def layer_config(encoder_config: Any, dtype: torch.dtype) -> TransformerConfig:
    """megatron's config for layers built from an encoder's Hugging Face config (weights are loaded, not
    initialised; CPU allocation; no fusions that need Apex or Transformer Engine)."""
    parallel = parallel_state.get_tensor_model_parallel_world_size()
    return TransformerConfig(
        num_layers=encoder_config.num_hidden_layers, hidden_size=encoder_config.hidden_size,
        num_attention_heads=encoder_config.num_attention_heads, ffn_hidden_size=encoder_config.intermediate_size,
        tensor_model_parallel_size=parallel,
        pipeline_model_parallel_size=parallel_state.get_pipeline_model_parallel_world_size(),
        params_dtype=dtype, pipeline_dtype=dtype, use_cpu_initialization=True, perform_initialization=False,
        gradient_accumulation_fusion=False, sequence_parallel=False, bias_activation_fusion=False,
        masked_softmax_fusion=False, persist_layer_norm=False, bias_dropout_fusion=False,
        apply_rope_fusion=False,
        # batched p2p on or off are both correct for the non-interleaved schedule; separate sends are the
        # safe choice (the interleaved schedule is wrong with batched p2p, upstream #750)
        batch_p2p_comm=False, variable_seq_lengths=False,
    )


def wrap_data_parallel(module: torch.nn.Module, config: TransformerConfig) -> DistributedDataParallel:
    """megatron's DDP: gradients accumulate in contiguous buffers, averaged over the data-parallel group."""
    ddp_config = DistributedDataParallelConfig(grad_reduce_in_fp32=False, overlap_grad_reduce=False,
                                               use_distributed_optimizer=False, average_in_collective=False)
    # without overlap_grad_reduce nothing is communicated during backward: gradients of all microbatches and
    # accumulation steps add up locally and `finish_gradients` reduces them once per optimiser step
    return DistributedDataParallel(config=config, ddp_config=ddp_config, module=module)


def finish_gradients(model: DistributedDataParallel) -> None:
    """Average the gradients over the data-parallel group (and whatever else megatron finalises)."""
    with cuda_devices_on_cpu():
        finalize_model_grads([model])


def forward_backward(*, step: Any, microbatches: Iterator[Any], model: torch.nn.Module, count: int,
                     seq_length: int, micro_batch_size: int, forward_only: bool = False) -> list[Any]:
    """Run megatron's schedule (no pipelining for PP=1, 1F1B otherwise) over `count` microbatches."""
    schedule = get_forward_backward_func()
    with cuda_devices_on_cpu():
        return schedule(forward_step_func=step, data_iterator=microbatches, model=[model], num_microbatches=count,
                        seq_length=seq_length, micro_batch_size=micro_batch_size, forward_only=forward_only)
