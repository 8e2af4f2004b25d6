"""The built-in execution strategies, through accelerate: one process (CPU or one GPU), and data parallel."""

from __future__ import annotations

import os
from typing import Any

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Strategy

COMM_HOOKS = ("none", "fp16", "bf16", "powersgd")


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
        return Accelerator(cpu=not cuda, mixed_precision=mixed_precision(self.train["precision"], cuda))


def mixed_precision(precision: str, cuda: bool) -> str:
    """accelerate's mixed-precision name for `train.precision` (fp16 only on CUDA)."""
    if precision == "fp16" and not cuda:
        raise ConfigError("train.precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return {"fp32": "no", "fp64": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


class DataParallel(Strategy):
    """Data parallel over `nproc` processes on this machine (gloo on CPU, nccl on GPUs), launched by etk."""

    name = "ddp"
    description = "data parallel: one process per core group or GPU, gradients all-reduced (gloo / nccl)"
    options = {
        "nproc": Option(int, 2, "worker processes (also --nproc); each takes train.batch_size examples per step",
                        min=1),
        "comm_hook": Option(str, "none", "gradient communication: none, fp16 or bf16 (compressed all-reduce), "
                                         "powersgd (low-rank)"),
        "powersgd_rank": Option(int, 1, "rank of PowerSGD's gradient approximation", min=1),
        "compile": Option(bool, False, "torch.compile the model (inductor)"),
    }

    def __init__(self, options: dict[str, Any], train: dict[str, Any]) -> None:
        super().__init__(options, train)
        if self.options.get("comm_hook", "none") not in COMM_HOOKS:
            raise ConfigError(f"strategy.comm_hook {self.options['comm_hook']!r} is not one of "
                              f"{', '.join(COMM_HOOKS)}")
        if int(self.options.get("nproc", 2)) < 1:
            raise ConfigError("strategy.nproc (--nproc) must be at least 1")
        if self.options.get("comm_hook") == "bf16" and not use_cuda(self.train["device"]):
            raise ConfigError("strategy.comm_hook=bf16 needs CUDA GPUs (NCCL); on the CPU use fp16 or powersgd")
        self._accelerator: Any = None

    def processes(self) -> int:
        return int(self.options.get("nproc", 2))

    def check_algorithm(self, algorithm: type[Any]) -> None:
        super().check_algorithm(algorithm)
        if algorithm.own_step and self.options.get("comm_hook", "none") != "none":
            raise ConfigError(f"strategy.comm_hook applies to DDP's own all-reduce; algorithm {algorithm.name!r} "
                              f"has its own step, whose gradients etk all-reduces uncompressed: drop "
                              f"--set strategy.comm_hook={self.options['comm_hook']}")
        if algorithm.own_step and self.options.get("compile"):
            raise ConfigError(f"strategy.compile compiles DDP's wrapped model; algorithm {algorithm.name!r} has its "
                              f"own step: drop --set strategy.compile=true")

    def is_main_process(self) -> bool:
        return os.environ.get("RANK", "0") == "0"

    def barrier(self) -> None:
        self.accelerator().wait_for_everyone()

    def accelerator(self) -> Any:
        if self._accelerator is None:
            from accelerate import Accelerator
            from accelerate.utils import DDPCommunicationHookType, DistributedDataParallelKwargs

            cuda = use_cuda(self.train["device"])
            hook = {"none": DDPCommunicationHookType.NO, "fp16": DDPCommunicationHookType.FP16,
                    "bf16": DDPCommunicationHookType.BF16,
                    "powersgd": DDPCommunicationHookType.POWER_SGD}[self.options.get("comm_hook", "none")]
            state = ({"matrix_approximation_rank": int(self.options.get("powersgd_rank", 1))}
                     if hook is DDPCommunicationHookType.POWER_SGD else {})
            # find_unused_parameters: encoders carry parts an app may not use (BERT's pooler under mean pooling)
            ddp = DistributedDataParallelKwargs(comm_hook=hook, comm_state_option=state, find_unused_parameters=True)
            precision = mixed_precision(self.train["precision"], cuda)
            self._accelerator = Accelerator(cpu=not cuda, mixed_precision=precision, kwargs_handlers=[ddp],
                                            dynamo_backend="inductor" if self.options.get("compile") else "no")
        return self._accelerator


class Megatron(Strategy):
    """Tensor x pipeline x data parallel through megatron-core, launched by etk (gloo on CPU, nccl on GPUs)."""

    name = "megatron"
    description = "megatron-core tensor (tp) x pipeline (pp) parallel, data parallel over the remaining processes"
    own_steps = False  # the pipeline schedule runs the app model's own loss over microbatches
    options = {
        "tp": Option(int, 1, "tensor-parallel size: each layer's heads and feed-forward split over tp processes"),
        "pp": Option(int, 1, "pipeline-parallel size: the encoder layers split into pp stages"),
        "microbatches": Option(int, 0, "microbatches each batch is split into for the pipeline schedule "
                                       "(0: 2 x pp when pp > 1, else 1)", min=0),
        "nproc": Option(int, 0, "worker processes (also --nproc), a multiple of tp x pp; the quotient is the "
                                "data-parallel size (0: tp x pp)", min=0),
    }

    def __init__(self, options: dict[str, Any], train: dict[str, Any]) -> None:
        super().__init__(options, train)
        for key in ("tp", "pp"):
            if int(self.options.get(key, 1)) < 1:
                raise ConfigError(f"strategy.{key} must be at least 1")
        if int(self.options.get("microbatches", 0)) < 0:
            raise ConfigError("strategy.microbatches must be 0 (automatic) or more")
        model_parallel = self._model_parallel()
        if self.processes() % model_parallel:
            raise ConfigError(f"--nproc {self.processes()} is not a multiple of strategy.tp x strategy.pp "
                              f"= {model_parallel}")
        import importlib.util

        if importlib.util.find_spec("megatron") is None or importlib.util.find_spec("megatron.core") is None:
            raise ConfigError("--strategy megatron needs megatron-core: pip install 'etk-core[megatron]'")
        if self.train["precision"] == "fp16":
            raise ConfigError("--strategy megatron trains in fp32 or bf16 (fp16 would need megatron's loss-scaling "
                              "optimiser); use --set train.precision=bf16")
        if self.train["precision"] == "bf16" and not use_cuda(self.train["device"]):
            # megatron's parallel layers run their backward under CUDA autocast only
            raise ConfigError("--strategy megatron trains in bf16 on GPUs only; on the CPU use "
                              "--set train.precision=fp32")
        self._engine: Any = None

    def check(self, app: Any, encoder: Any) -> None:
        if getattr(app, "classic", False):
            raise ConfigError("--strategy megatron cuts the backbone encoder; classic app models (textcnn, bicnn, "
                              "...) train with --strategy single or ddp")
        from etk_core.megatron.parallel_bert import check_encoder

        check_encoder(encoder, int(self.options.get("tp", 1)), int(self.options.get("pp", 1)))

    def _model_parallel(self) -> int:
        return int(self.options.get("tp", 1)) * int(self.options.get("pp", 1))

    def processes(self) -> int:
        return int(self.options.get("nproc") or 0) or self._model_parallel()

    def is_main_process(self) -> bool:
        return os.environ.get("RANK", "0") == "0"

    def engine(self) -> Any:
        from etk_core.megatron.engine import MegatronEngine

        return MegatronEngine(int(self.options.get("tp", 1)), int(self.options.get("pp", 1)),
                              int(self.options.get("microbatches", 0)), self.train["precision"],
                              use_cuda(self.train["device"]))

    def barrier(self) -> None:
        if self._engine is None:
            self._engine = self.engine()
        self._engine.barrier()

    def accelerator(self) -> Any:
        raise ConfigError("--strategy megatron trains through etk's training loop only; this algorithm needs "
                          "--strategy single or ddp")
