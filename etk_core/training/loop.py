"""The core training loop, on accelerate: AdamW with linear warm-up/decay, accumulation, clipping,
periodic evaluation with early stopping, atomic checkpoints and exact resumption."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etk_core.training.batching import train_batches
from etk_core.training.checkpoint import latest_checkpoint
from etk_core.training.evaluation import predict_outputs


@dataclass
class LoopResult:
    """What a finished training loop reports."""

    steps: int
    best_metrics: dict[str, float] | None
    last_metrics: dict[str, float] | None
    samples_per_s: float
    history: list[dict[str, Any]] = field(default_factory=list)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class TrainingLoop:
    """Trains `model` on encoded `train` features; evaluates on `dev`; calls `on_best(model, metrics)`."""

    def __init__(self, *, model: Any, app: Any, train: list[dict[str, Any]], dev: list[dict[str, Any]] | None,
                 config: dict[str, Any], engine: Any, run_dir: Path | None,
                 on_best: Callable[[Any, dict[str, float]], None] | None = None,
                 progress: Any = None, resume: bool = False) -> None:
        self.model, self.app, self.train, self.dev = model, app, train, dev
        self.cfg = config["train"]
        self.seed = config["seed"]
        self.engine = engine
        self.run_dir = run_dir
        self.on_best = on_best
        self.progress = progress
        self.resume = resume
        self.main_metric = app.main_metric
        self.lengths = [app.length(feature) for feature in train]

    # -- pieces -----------------------------------------------------------------------------------
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        batches = train_batches(self.lengths, self.cfg["batch_size"], self.seed, epoch, self.cfg["bucket"])
        world, rank = self.engine.data_world, self.engine.data_rank
        if world > 1:  # every rank gets the same number of batches
            usable = len(batches) - len(batches) % world
            batches = batches[rank:usable:world]
        return batches

    def _plan(self) -> tuple[int, int]:
        """(optimiser steps per epoch, total optimiser steps)."""
        per_epoch = max(1, math.ceil(len(self._epoch_batches(0)) / self.cfg["grad_accum"]))
        total = self.cfg["max_steps"] or max(1, math.ceil(per_epoch * self.cfg["epochs"]))
        return per_epoch, total

    def evaluate(self) -> dict[str, float]:
        """Metrics of the current model on the dev features, the same on every process."""
        return self._metrics(self.engine.full_model())

    def _metrics(self, model: Any | None) -> dict[str, float]:
        """Dev metrics of `model` where there is one (see `TrainEngine.full_model`), shared with all processes."""
        metrics = None
        if model is not None:
            outputs = predict_outputs(model, self.app, self.dev, self.cfg["eval_batch_size"],
                                      self.engine.device(), self.engine.autocast)
            metrics = {key: float(value) for key, value in self.app.metrics(outputs, self.dev).items()}
        return self.engine.share(metrics)

    def _log(self, record: dict[str, Any]) -> None:
        if self.run_dir is not None and self.engine.is_main_process:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be written again)."""
        path = self.run_dir / "metrics.jsonl" if self.run_dir else None
        if path and path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> LoopResult:
        import torch
        from transformers import get_linear_schedule_with_warmup

        cfg, engine = self.cfg, self.engine
        _, total = self._plan()
        optimizer = engine.prepare(self.model, lambda module: torch.optim.AdamW(
            _param_groups(module, cfg["weight_decay"]), lr=cfg["lr"]))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg["warmup_ratio"] * total), total)
        # `epoch`/`batch` is the position of the next batch to train on: resuming starts exactly there.
        state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best": None, "best_step": None,
                                 "bad_evals": 0, "last": None, "samples": 0, "train_seconds": 0.0,
                                 "loss_sum": 0.0, "loss_count": 0}
        ckpt_dir = self.run_dir / "checkpoints" if self.run_dir else None
        if self.resume and ckpt_dir:
            if found := latest_checkpoint(ckpt_dir):
                state = engine.load_checkpoint(found, optimizer, scheduler)
            if engine.is_main_process:
                self._truncate_log(state["step"])
        self.state, self._optimizer, self._scheduler = state, optimizer, scheduler
        self._history: list[dict[str, Any]] = []
        eval_every = cfg["eval_every"]
        ckpt_every = cfg["checkpoint_every"]
        task = (self.progress.add_task("train", total=total, completed=state["step"], loss=float("nan"), rate=0.0)
                if self.progress is not None else None)
        engine.training_module().train()
        stop = finished_before = state["step"] >= total
        while not stop:
            batches = self._epoch_batches(state["epoch"])
            accum = 0
            for index in range(state["batch"], len(batches)):
                tick = time.perf_counter()
                batch = self.app.collate([self.train[i] for i in batches[index]])
                updates = accum + 1 >= cfg["grad_accum"] or index + 1 == len(batches)
                state["loss_sum"] += engine.forward_backward(batch, 1.0 / cfg["grad_accum"], sync=updates)
                state["loss_count"] += 1
                state["samples"] += len(batches[index])
                accum += 1
                last_of_epoch = index + 1 == len(batches)
                if accum < cfg["grad_accum"] and not last_of_epoch:
                    state["train_seconds"] += time.perf_counter() - tick
                    continue
                accum = 0
                engine.finish_gradients()
                if cfg["max_grad_norm"]:
                    engine.clip_grad_norm(cfg["max_grad_norm"])
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["train_seconds"] += time.perf_counter() - tick
                state["step"] += 1
                if last_of_epoch:
                    state["epoch"], state["batch"] = state["epoch"] + 1, 0
                else:
                    state["batch"] = index + 1
                if task is not None:
                    self.progress.update(task, advance=1, loss=state["loss_sum"] / max(1, state["loss_count"]),
                                         rate=state["samples"] / max(state["train_seconds"], 1e-9))
                evaluated = False
                if (eval_every and state["step"] % eval_every == 0) or (not eval_every and last_of_epoch):
                    self._evaluate_and_log(len(batches))
                    evaluated = True
                    if cfg["early_stopping"] and state["bad_evals"] >= cfg["early_stopping"]:
                        stop = True
                stop = stop or state["step"] >= total
                if stop:
                    break
                if (ckpt_every and state["step"] % ckpt_every == 0) or (not ckpt_every and evaluated):
                    self._checkpoint(ckpt_dir)
        if finished_before:  # resuming a finished run changes nothing
            return self._result()
        if not self._history or self._history[-1]["step"] != state["step"]:
            self._evaluate_and_log(len(self._epoch_batches(0)))
        self._checkpoint(ckpt_dir)
        if not self.dev and self.on_best:
            model = engine.full_model()
            if engine.is_main_process:
                self.on_best(model, {})
        return self._result()

    def _result(self) -> LoopResult:
        state = self.state
        return LoopResult(steps=state["step"], best_metrics=state["best"], last_metrics=state["last"],
                          samples_per_s=state["samples"] / max(state["train_seconds"], 1e-9),
                          history=self._history)

    def _checkpoint(self, ckpt_dir: Path | None) -> None:
        if ckpt_dir is not None:
            self.engine.save_checkpoint(ckpt_dir, self._optimizer, self._scheduler, self.state)

    def _evaluate_and_log(self, batches_per_epoch: int) -> None:
        state = self.state
        record: dict[str, Any] = {
            "step": state["step"],
            "epoch": round(state["epoch"] + state["batch"] / max(1, batches_per_epoch), 4),
            "train_loss": state["loss_sum"] / max(1, state["loss_count"]),
        }
        state["loss_sum"], state["loss_count"] = 0.0, 0
        if self.dev:
            model = self.engine.full_model()
            metrics = self._metrics(model)
            record.update({"split": "dev", **metrics})
            state["last"] = metrics
            value = metrics[self.main_metric]
            if state["best"] is None or value > state["best"][self.main_metric]:
                state["best"], state["best_step"], state["bad_evals"] = metrics, state["step"], 0
                if self.on_best and self.engine.is_main_process:
                    self.on_best(model, metrics)
            else:
                state["bad_evals"] += 1
        self._history.append(record)
        self._log(record)
