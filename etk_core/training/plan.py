"""What an algorithm gives the training engine for one stage: data streams, a step, extra and frozen modules,
hooks. The engine (`etk_core.training.loop`) owns everything else: devices and strategies, batching,
accumulation, clipping, evaluation, early stopping, progress, `metrics.jsonl`, checkpoints and `--resume`.

Plugins import these names from `etk_core.training`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: How a stream with groups (one per domain) orders its batches: each batch holds one group's examples.
MIXES = ("round_robin", "proportional")


@dataclass
class Stream:
    """A named source of training batches: encoded features, drawn in length-bucketed batches.

    `pool` restricts the stream to some feature indices (e.g. the selected source examples). `groups`
    (one label per feature, e.g. its domain) makes every batch hold examples of one group, groups taking
    turns (`round_robin`) or in proportion to their size (`proportional`). A stream that is not the stage's
    budget stream restarts (reshuffled) whenever it runs out. Under data parallelism each rank draws every
    world-th batch, so the replicas see disjoint batches."""

    features: list[dict[str, Any]]
    batch_size: int
    bucket: bool = True
    pool: list[int] | None = None
    groups: list[Any] | None = None
    mix: str = "round_robin"
    #: Added to the run's seed for this stream's shuffles (two streams over the same data differ).
    seed_offset: int = 0


@dataclass
class StreamBatch:
    """One batch of a stream: the collated tensors (on the training device) and the feature indices."""

    tensors: dict[str, Any]
    indices: list[int]
    group: Any = None

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class Trainable:
    """An extra trainable module (discriminator, private encoder, projection) with its own AdamW optimiser,
    learning rate and schedule (`linear`: warm-up and decay like the main model; `constant`)."""

    module: Any
    lr: float
    weight_decay: float = 0.0
    schedule: str = "linear"


@dataclass
class StepContext:
    """What a step function and the hooks see."""

    stage: str
    step: int  # optimiser steps done in this stage before this one
    epoch: int
    model: Any  # the main model as this process trains it
    modules: dict[str, Any]  # extra trainable modules
    frozen: dict[str, Any]  # frozen modules (eval mode, no gradients)
    device: Any
    data_world: int = 1
    data_rank: int = 0
    autocast: Callable[[], Any] | None = None
    mean: Callable[[Any], Any] = lambda tensor: tensor  # average a tensor over the data-parallel replicas
    figures: dict[str, float] = field(default_factory=dict)

    def log(self, **figures: Any) -> None:
        """Record figures of this step for `metrics.jsonl` (numbers or one-element tensors, e.g. the share of
        source kept)."""
        self.figures.update({key: float(value.detach()) if hasattr(value, "detach") else float(value)
                             for key, value in figures.items()})


#: One batch per stream in, named losses out (their weighted sum is optimised; each is logged).
StepFunction = Callable[[StepContext, dict[str, StreamBatch]], dict[str, Any]]
#: A hook at the end of a step, an evaluation (with its metrics) or an epoch; may return figures to log.
Hook = Callable[..., dict[str, float] | None]


@dataclass
class Stage:
    """One stage of an algorithm: its model, streams, step, modules, budget, hooks and artifact.

    With `step=None` the stage is plain supervised training of `model` on its one stream: the model's own
    `loss` (every strategy can run that, megatron's pipelines included). `budget` names the stream whose
    passes are the stage's epochs (default: the first). `eval_model` gives the model to evaluate and save
    (default: `model`); `evaluate` replaces the app's dev metrics (returns metrics with the app's main metric).
    A stage with `run_once` (and no streams) computes something once instead of training (a selection,
    scores) and keeps it in the algorithm's state."""

    name: str = "train"
    model: Any = None
    streams: dict[str, Stream] = field(default_factory=dict)
    step: StepFunction | None = None
    loss_weights: dict[str, float] = field(default_factory=dict)
    modules: dict[str, Trainable] = field(default_factory=dict)
    frozen: dict[str, Any] = field(default_factory=dict)
    budget: str | None = None
    epochs: float | None = None  # default train.epochs
    max_steps: int | None = None  # default train.max_steps
    lr: float | None = None  # the main model's learning rate (default train.lr)
    dev: list[dict[str, Any]] | None = None
    dev_groups: list[Any] | None = None  # one label per dev feature (its domain): per-group dev metrics
    eval_model: Callable[[], Any] | None = None
    evaluate: Callable[[Any], dict[str, float]] | None = None
    artifact: str | None = "model"  # folder of the run where the best model of this stage is written
    #: More models written with every new best, beside `artifact`: run sub-folder -> model (e.g.
    #: `domains/source`, the source domain's model of a feature-based TL run).
    extra_artifacts: Callable[[], dict[str, Any]] | None = None
    on_step_end: Hook | None = None
    on_eval_end: Hook | None = None
    on_epoch_end: Hook | None = None
    run_once: Callable[[], dict[str, float] | None] | None = None

    def budget_stream(self) -> str:
        """The stream whose passes count the epochs."""
        return self.budget or next(iter(self.streams))
