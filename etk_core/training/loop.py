"""The training engine's loop: one stage of an algorithm (`etk_core.training.plan.Stage`) trained through a
strategy's `TrainEngine`: named streams, the step, AdamW with linear warm-up/decay for the model and every
extra module, accumulation, clipping, periodic evaluation with early stopping, hooks, progress,
`metrics.jsonl` rows, atomic checkpoints of all of it and exact resumption."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etk_core.errors import ConfigError
from etk_core.training.batching import grouped_batches, train_batches
from etk_core.training.evaluation import move_to, predict_outputs
from etk_core.training.plan import MIXES, Stage, StepContext, Stream, StreamBatch
from etk_core.training.reporter import Reporter, SilentReporter


@dataclass
class LoopResult:
    """What a finished stage reports."""

    steps: int
    best_metrics: dict[str, float] | None
    last_metrics: dict[str, float] | None
    samples_per_s: float
    history: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    best_step: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for the run folder's stage records."""
        return {"steps": self.steps, "best_metrics": self.best_metrics, "last_metrics": self.last_metrics,
                "samples_per_s": self.samples_per_s, "figures": self.figures, "best_step": self.best_step}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> LoopResult:
        """The result of a stage finished before a resume, from its record."""
        return cls(steps=record["steps"], best_metrics=record["best_metrics"], last_metrics=record["last_metrics"],
                   samples_per_s=record["samples_per_s"], figures=record["figures"], best_step=record["best_step"])

    @classmethod
    def from_state(cls, state: dict[str, Any], history: list[dict[str, Any]] | None = None) -> LoopResult:
        """The result a stage's loop state (a live one, or a finished stage's last checkpoint) stands for."""
        return cls(steps=state["step"], best_metrics=state["best"], last_metrics=state["last"],
                   samples_per_s=state["samples"] / max(state["train_seconds"], 1e-9),
                   history=history or [], best_step=state["best_step"])


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norms."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class StreamCursor:
    """Where a stream stands: the batches of its current pass, sharded for this rank, and the next one."""

    def __init__(self, name: str, stream: Stream, app: Any, seed: int, world: int, rank: int) -> None:
        if stream.mix not in MIXES:
            raise ConfigError(f"stream {name!r}: mix {stream.mix!r} is not one of {', '.join(MIXES)}")
        self.name, self.stream, self.app = name, stream, app
        self.pool = stream.pool if stream.pool is not None else list(range(len(stream.features)))
        if not self.pool:
            raise ConfigError(f"stream {name!r} has no examples to train on")
        self.lengths = [app.length(stream.features[i]) for i in self.pool]
        self.seed = seed + stream.seed_offset
        self.world, self.rank = world, rank
        self.epoch, self.batch = 0, 0
        self._cached: tuple[int, list[tuple[list[int], Any]]] | None = None

    def epoch_batches(self, epoch: int) -> list[tuple[list[int], Any]]:
        """This rank's batches of one pass: (feature indices, group)."""
        if self._cached is None or self._cached[0] != epoch:
            stream = self.stream
            if stream.groups is not None:
                groups = [stream.groups[i] for i in self.pool]
                local = grouped_batches(self.lengths, groups, stream.batch_size, self.seed, epoch, stream.bucket,
                                        stream.mix)
            else:
                local = [(batch, None) for batch in
                         train_batches(self.lengths, stream.batch_size, self.seed, epoch, stream.bucket)]
            batches = [([self.pool[i] for i in indices], group) for indices, group in local]
            if self.world > 1:  # every rank gets the same number of batches
                usable = len(batches) - len(batches) % self.world
                if usable == 0:
                    raise ConfigError(f"stream {self.name!r} has fewer batches than data-parallel workers; "
                                      f"lower its batch size or --nproc")
                batches = batches[self.rank:usable:self.world]
            self._cached = (epoch, batches)
        return self._cached[1]

    def draw(self) -> tuple[list[int], Any]:
        """The next batch of an endless stream (a new pass, reshuffled, when one runs out)."""
        batches = self.epoch_batches(self.epoch)
        if self.batch >= len(batches):
            self.epoch, self.batch = self.epoch + 1, 0
            batches = self.epoch_batches(self.epoch)
        self.batch += 1
        return batches[self.batch - 1]

    def collate(self, indices: list[int], group: Any, device: Any) -> StreamBatch:
        tensors = self.app.collate([self.stream.features[i] for i in indices])
        return StreamBatch(move_to(tensors, device), indices, group)


class TrainingLoop:
    """Trains one stage; evaluates its dev features; calls `on_best(model, metrics)` for a new best."""

    def __init__(self, *, stage: Stage, app: Any, config: dict[str, Any], engine: Any, run_dir: Path | None,
                 on_best: Callable[[Any, dict[str, float]], None] | None = None,
                 reporter: Reporter | None = None, resume_from: Path | None = None,
                 algorithm_state: Callable[[], dict[str, Any]] | None = None, stage_index: int = 0,
                 checkpoint_prefix: str = "") -> None:
        if not stage.streams:
            raise ConfigError(f"stage {stage.name!r} declares no data stream")
        if stage.step is None and len(stage.streams) != 1:
            raise ConfigError(f"stage {stage.name!r}: several streams need a step function")
        if stage.step is not None and not engine.custom_steps:
            raise ConfigError(f"stage {stage.name!r} has its own step, which this strategy cannot run; use "
                              f"--strategy single or ddp")
        self.stage, self.app, self.engine, self.run_dir = stage, app, engine, run_dir
        self.cfg = config["train"]
        self.seed = config["seed"]
        self.on_best = on_best
        self.reporter = reporter or SilentReporter()
        self.resume_from = resume_from
        self.algorithm_state = algorithm_state
        self.stage_index = stage_index
        self.checkpoint_prefix = checkpoint_prefix
        self.main_metric = app.main_metric
        world, rank = engine.data_world, engine.data_rank
        self.cursors = {name: StreamCursor(name, stream, app, self.seed, world, rank)
                        for name, stream in stage.streams.items()}
        self.budget = stage.budget_stream()
        if self.budget not in self.cursors:
            raise ConfigError(f"stage {stage.name!r}: budget stream {self.budget!r} is not one of its streams")

    # -- plan -------------------------------------------------------------------------------------
    def plan(self) -> tuple[int, int]:
        """(optimiser steps per epoch, total optimiser steps) of the stage."""
        per_epoch = max(1, math.ceil(len(self.cursors[self.budget].epoch_batches(0)) / self.cfg["grad_accum"]))
        max_steps = self.stage.max_steps if self.stage.max_steps is not None else self.cfg["max_steps"]
        epochs = self.stage.epochs if self.stage.epochs is not None else self.cfg["epochs"]
        total = max_steps or max(1, math.ceil(per_epoch * epochs))
        return per_epoch, total

    # -- evaluation -------------------------------------------------------------------------------
    def _eval_model(self) -> Any:
        model = self.engine.full_model()
        if model is None or self.stage.eval_model is None:
            return model
        return self.stage.eval_model()

    def _metrics(self, model: Any | None) -> dict[str, float] | None:
        """Dev metrics of `model` where there is one (see `TrainEngine.full_model`), shared with all processes."""
        metrics = None
        if model is not None:
            if self.stage.evaluate is not None:
                metrics = {key: float(value) for key, value in self.stage.evaluate(model).items()}
            else:
                metrics = self._app_metrics(model)
        return self.engine.share(metrics)

    def _app_metrics(self, model: Any) -> dict[str, float]:
        dev = self.stage.dev
        outputs = predict_outputs(model, self.app, dev, self.cfg["eval_batch_size"], self.engine.device(),
                                  self.engine.autocast)
        metrics = {key: float(value) for key, value in self.app.metrics(outputs, dev).items()}
        groups = self.stage.dev_groups
        if groups is not None:  # per-domain dev metrics, as `<group>/<metric>`
            for group in sorted(set(groups), key=str):
                rows = [i for i, g in enumerate(groups) if g == group]
                part = {key: value[rows] for key, value in outputs.items()}
                for key, value in self.app.metrics(part, [dev[i] for i in rows]).items():
                    metrics[f"{group}/{key}"] = float(value)
        return metrics

    # -- log --------------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        self._history.append(record)
        if self.run_dir is not None and self.engine.is_main_process:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def _row(self, kind: str) -> dict[str, Any]:
        state = self.state
        per_epoch = max(1, len(self.cursors[self.budget].epoch_batches(state["epoch"])))
        return {"kind": kind, "stage": self.stage.name, "step": state["step"],
                "epoch": round(state["epoch"] + state["batch"] / per_epoch, 4)}

    def _mean_losses(self, prefix: str) -> dict[str, float]:
        sums, count = self.state["loss_sums"], max(1, self.state["loss_count"])
        return {("loss" if key == "loss" else f"{prefix}{key}"): value / count for key, value in sums.items()}

    def _log_train(self, figures: dict[str, float]) -> None:
        state = self.state
        record = self._row("train")
        record.update(self._mean_losses("loss_"))
        record["lr"] = self._optimizer.param_groups[0]["lr"]
        for name, (_, optimizer, _) in self._modules.items():
            record[f"lr_{name}"] = optimizer.param_groups[0]["lr"]
        record["samples_per_s"] = round(state["samples"] / max(state["train_seconds"], 1e-9), 3)
        record.update(figures)
        state["loss_sums"], state["loss_count"] = {}, 0
        self._log(record)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> LoopResult:
        import torch
        from transformers import get_constant_schedule, get_linear_schedule_with_warmup

        cfg, engine, stage = self.cfg, self.engine, self.stage
        _, total = self.plan()
        lr = stage.lr if stage.lr is not None else cfg["lr"]
        custom = stage.step is not None
        optimizer = engine.prepare(stage.model, lambda module: torch.optim.AdamW(
            param_groups(module, cfg["weight_decay"]), lr=lr), custom_step=custom)
        warmup = int(cfg["warmup_ratio"] * total)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        device = engine.device()
        self._modules: dict[str, tuple[Any, Any, Any]] = {}
        for name, extra in stage.modules.items():
            module = extra.module.to(device)
            opt = torch.optim.AdamW(param_groups(module, extra.weight_decay), lr=extra.lr)
            sched = (get_linear_schedule_with_warmup(opt, warmup, total) if extra.schedule == "linear"
                     else get_constant_schedule(opt))
            self._modules[name] = (module, opt, sched)
        for module in stage.frozen.values():  # a teacher: eval mode, no gradients, in no optimiser
            module.to(device).eval()
            module.requires_grad_(False)
        # `epoch`/`batch`: the position of the next budget batch; `streams`: the other streams' positions
        state: dict[str, Any] = {"stage": stage.name, "stage_index": self.stage_index, "done": False,
                                 "step": 0, "epoch": 0, "batch": 0, "streams": {},
                                 "best": None, "best_step": None, "bad_evals": 0, "last": None, "samples": 0,
                                 "train_seconds": 0.0, "loss_sums": {}, "loss_count": 0, "eval_loss_sums": {},
                                 "eval_loss_count": 0}
        ckpt_dir = self.run_dir / "checkpoints" if self.run_dir else None
        if self.resume_from is not None:
            state = engine.load_checkpoint(self.resume_from, optimizer, scheduler, modules=self._modules)
            for name, position in state["streams"].items():
                self.cursors[name].epoch, self.cursors[name].batch = position
        self.state, self._optimizer, self._scheduler = state, optimizer, scheduler
        self._history: list[dict[str, Any]] = []
        eval_every, ckpt_every, log_every = cfg["eval_every"], cfg["checkpoint_every"], cfg["log_every"]
        has_dev = bool(stage.dev) or stage.evaluate is not None
        self.reporter.start(stage.name, total, state["step"])
        self._train_mode()
        stop = finished_before = state["step"] >= total
        budget = self.cursors[self.budget]
        others = [cursor for name, cursor in self.cursors.items() if name != self.budget]
        while not stop:
            batches = budget.epoch_batches(state["epoch"])
            accum = 0
            for index in range(state["batch"], len(batches)):
                tick = time.perf_counter()
                context = self._context(state)
                draws = {self.budget: batches[index], **{cursor.name: cursor.draw() for cursor in others}}
                updates = accum + 1 >= cfg["grad_accum"] or index + 1 == len(batches)
                if custom:
                    streams = {name: self.cursors[name].collate(indices, group, device)
                               for name, (indices, group) in draws.items()}
                    losses = engine.forward_backward(None, 1.0 / cfg["grad_accum"], sync=updates,
                                                     step=self._loss_function(context, streams))
                else:
                    indices = draws[self.budget][0]
                    batch = self.app.collate([stage.streams[self.budget].features[i] for i in indices])
                    losses = engine.forward_backward(batch, 1.0 / cfg["grad_accum"], sync=updates)
                for key, value in losses.items():
                    state["loss_sums"][key] = state["loss_sums"].get(key, 0.0) + value
                state["eval_loss_sums"]["loss"] = state["eval_loss_sums"].get("loss", 0.0) + losses["loss"]
                state["loss_count"] += 1
                state["eval_loss_count"] += 1
                state["samples"] += sum(len(indices) for indices, _ in draws.values())
                accum += 1
                last_of_epoch = index + 1 == len(batches)
                if accum < cfg["grad_accum"] and not last_of_epoch:
                    state["train_seconds"] += time.perf_counter() - tick
                    continue
                accum = 0
                self._optimiser_step(optimizer, scheduler)
                state["train_seconds"] += time.perf_counter() - tick
                state["step"] += 1
                if last_of_epoch:
                    state["epoch"], state["batch"] = state["epoch"] + 1, 0
                else:
                    state["batch"] = index + 1
                state["streams"] = {cursor.name: [cursor.epoch, cursor.batch] for cursor in others}
                figures = dict(context.figures)
                context.step = state["step"]
                if stage.on_step_end is not None:
                    figures.update(stage.on_step_end(context) or {})
                if last_of_epoch and stage.on_epoch_end is not None:
                    figures.update(stage.on_epoch_end(context, state["epoch"]) or {})
                self._train_mode()
                if figures or (log_every and state["step"] % log_every == 0):
                    self._log_train(figures)
                self.reporter.update(state["step"], state["eval_loss_sums"]["loss"] / max(1, state["eval_loss_count"]),
                                     state["samples"] / max(state["train_seconds"], 1e-9))
                evaluated = False
                if (eval_every and state["step"] % eval_every == 0) or (not eval_every and last_of_epoch):
                    self._evaluate_and_log(has_dev, context)
                    evaluated = True
                    if cfg["early_stopping"] and state["bad_evals"] >= cfg["early_stopping"]:
                        stop = True
                stop = stop or state["step"] >= total
                if stop:
                    break
                if (ckpt_every and state["step"] % ckpt_every == 0) or (not ckpt_every and evaluated):
                    self._checkpoint(ckpt_dir)
        if not finished_before:
            if not self._history or self._history[-1]["step"] != state["step"] or \
                    self._history[-1]["kind"] != "eval":
                self._evaluate_and_log(has_dev, self._context(state))
            if not has_dev and self.on_best:  # no dev data: the last model is the result
                model = self._eval_model()
                if engine.is_main_process:
                    self.on_best(model, {})
            state["done"] = True
            self._checkpoint(ckpt_dir)
        self.reporter.finish()
        return self._result()

    def _train_mode(self) -> None:
        self.engine.training_module().train()
        for module, _, _ in self._modules.values():
            module.train()
        for module in self.stage.frozen.values():
            module.eval()

    def _context(self, state: dict[str, Any]) -> StepContext:
        engine = self.engine
        return StepContext(stage=self.stage.name, step=state["step"], epoch=state["epoch"],
                           model=engine.training_module(), modules={k: v[0] for k, v in self._modules.items()},
                           frozen=dict(self.stage.frozen), device=engine.device(), data_world=engine.data_world,
                           data_rank=engine.data_rank, autocast=engine.autocast, mean=engine.mean)

    def _loss_function(self, context: StepContext, streams: dict[str, StreamBatch]) -> Callable[[Any], Any]:
        weights = self.stage.loss_weights

        def compute(model: Any) -> tuple[Any, dict[str, Any]]:
            context.model = model
            named = self.stage.step(context, streams)
            if not named:
                raise ConfigError(f"stage {self.stage.name!r}: the step returned no loss")
            total = sum(weights.get(key, 1.0) * value for key, value in named.items())
            return total, named

        return compute

    def _optimiser_step(self, optimizer: Any, scheduler: Any) -> None:
        import torch

        engine, cfg = self.engine, self.cfg
        engine.finish_gradients()
        extra_params = [p for module, _, _ in self._modules.values() for p in module.parameters()]
        engine.sync_gradients(extra_params)
        if cfg["max_grad_norm"]:
            engine.clip_grad_norm(cfg["max_grad_norm"])
            for module, _, _ in self._modules.values():
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg["max_grad_norm"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        for _, opt, sched in self._modules.values():
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)

    def _result(self) -> LoopResult:
        return LoopResult.from_state(self.state, self._history)

    def _checkpoint(self, ckpt_dir: Path | None) -> None:
        if ckpt_dir is not None:
            algorithm = self.algorithm_state() if self.algorithm_state else None
            from etk_core.artifact import stored_weights

            self.engine.save_checkpoint(ckpt_dir, self._optimizer, self._scheduler, self.state,
                                        modules=self._modules, algorithm_state=algorithm,
                                        prefix=self.checkpoint_prefix, keep=self.cfg.get("keep_checkpoints", 1),
                                        same_as=stored_weights(ckpt_dir.parent))

    def _evaluate_and_log(self, has_dev: bool, context: StepContext) -> None:
        state = self.state
        record = self._row("eval")
        record["train_loss"] = state["eval_loss_sums"].get("loss", 0.0) / max(1, state["eval_loss_count"])
        state["eval_loss_sums"], state["eval_loss_count"] = {}, 0
        if has_dev:
            model = self._eval_model()
            metrics = self._metrics(model)
            record.update({"split": "dev", **metrics})
            state["last"] = metrics
            self.reporter.evaluated(state["step"], metrics)
            value = metrics[self.main_metric]
            if state["best"] is None or value > state["best"][self.main_metric]:
                state["best"], state["best_step"], state["bad_evals"] = metrics, state["step"], 0
                if self.on_best and self.engine.is_main_process:
                    self.on_best(model, metrics)
            else:
                state["bad_evals"] += 1
            if self.stage.on_eval_end is not None:
                record.update(self.stage.on_eval_end(context, metrics) or {})
                self._train_mode()
        self._log(record)
