"""The shared transfer base: one shared encoder (any app model) with a target and a source head, target and
source batches interleaved, target batches never filtered, a fixed target-dev sample for rewards, and the
log of what was selected. The algorithms differ only in how they choose source examples (`select`)."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Algorithm

SELECTION_FILE = "selection.jsonl"

COMMON_OPTIONS: dict[str, Option] = {
    "source_batch_size": Option((int, type(None)), None, "source examples per step (null: train.batch_size)"),
    "source_weight": Option(float, 1.0, "weight of the source loss (mean over the whole source batch, so "
                                        "dropping examples lowers the source's share)"),
}
SELECTOR_OPTIONS: dict[str, Option] = {
    "reward_dev_size": Option(int, 300, "target-dev examples in the fixed reward sample"),
    "reward_metric": Option(str, "accuracy", "the delayed reward is the change of this metric on the reward "
                                             "sample (an app metric, or neg_loss for the mean log-likelihood)"),
    "episode_steps": Option(int, 5, "training steps between two delayed rewards (one selector update each)"),
    "warm_start_steps": Option(int, 20, "first steps train on all source data (the selector only watches)"),
    "initial_keep": Option(float, 0.5, "keep probability of every source example before the selector learns"),
    "entropy_weight": Option(float, 0.01, "entropy bonus of the actor (keeps it exploring)"),
    "selector_lr": Option(float, 1e-3, "Adam learning rate of the selector (actor and critic)"),
    "selector_hidden": Option(int, 128, "hidden units of the actor, critic (and discriminator)"),
}
SELECTION_REPORT_OPTIONS: dict[str, Option] = {
    "distance_sample": Option(int, 200, "after training, MMD of the selected and of the rejected source to the "
                                        "target over this many examples of each (0: skip)"),
}


def cycle_batches(lengths: list[int], batch_size: int, seed: int, bucket: bool) -> Iterator[list[int]]:
    """Endless length-bucketed batches, reshuffled each pass."""
    from etk_core.training.batching import train_batches

    epoch = 0
    while True:
        yield from train_batches(lengths, batch_size, seed, epoch, bucket)
        epoch += 1


class InstanceTransfer(Algorithm):
    """Base of the instance-based TL algorithms and their baselines (not registered itself)."""

    roles: ClassVar[tuple[str, ...]] = ("target", "source")
    optional_roles: ClassVar[tuple[str, ...]] = ("dev", "test")
    options: ClassVar[dict[str, Option]] = COMMON_OPTIONS
    strategies: ClassVar[tuple[str, ...] | None] = ("single",)  # the selectors act on one process's batches
    resumable: ClassVar[bool] = False  # runs take minutes; selector state is not checkpointed
    #: Whether source examples get their own output layer (False: one head for both domains).
    source_head: ClassVar[bool] = True
    #: Which losses a step uses.
    use_target: ClassVar[bool] = True
    use_source: ClassVar[bool] = True

    # -- hooks for the algorithms -------------------------------------------------------------------
    def prepare_selection(self, run: Any, domain_model: Any) -> None:
        """Before training (e.g. score the source pool)."""

    def source_pool(self, run: Any) -> list[int]:
        """Indices of the source examples the source stream draws from."""
        return list(range(len(run.features("source"))))

    def select(self, step: int, source: dict[str, Any], target: dict[str, Any]) -> Any:
        """Keep (1.0) / drop (0.0) per source example of the batch; `source`/`target` hold the step's
        `features` (shared representation), `logits`, `labels` and `indices` (and for source examples
        `target_logits`, what the target head makes of them). Default: keep all."""
        import torch

        return torch.ones(len(source["labels"]))

    def after_step(self, step: int, model: Any) -> dict[str, float]:
        """After the TL module's update (delayed rewards); returns figures to log."""
        return {}

    def selection_rows(self, run: Any) -> list[dict[str, Any]]:
        """The selection report, one row per source example (empty: nothing to report)."""
        return []

    # -- the loop -----------------------------------------------------------------------------------
    def run(self, run: Any) -> dict[str, float]:
        import torch
        from transformers import get_linear_schedule_with_warmup

        from etk_core.training.evaluation import move_to
        from etk_instancetl.heads import SOURCE, TARGET, DomainModel

        self.run_ctx = run
        self.opts = run.config["algo"]
        cfg, seed = run.config["train"], run.config["seed"]
        self.generator = torch.Generator().manual_seed(seed)
        accelerator = run.strategy.accelerator()
        self.device = accelerator.device
        app = run.app
        model = run.build_model().to(self.device)
        domain_model = DomainModel(model, shared_head=not self.source_head)
        self.domain_model = domain_model
        target, source = run.features("target"), run.features("source")
        self.prepare_selection(run, domain_model)
        pool = self.source_pool(run)
        if self.use_source and not pool:
            raise ConfigError(f"algorithm {self.name!r}: no source examples to train on")
        batch_size = cfg["batch_size"]
        source_batch = self.opts.get("source_batch_size") or batch_size
        per_epoch = math.ceil(len(target) / batch_size)  # every algorithm gets the same budget in steps
        total = cfg["max_steps"] or max(1, math.ceil(per_epoch * cfg["epochs"]))
        eval_every = cfg["eval_every"] or per_epoch
        target_stream = cycle_batches([app.length(f) for f in target], batch_size, seed, cfg["bucket"])
        pool_lengths = [app.length(source[i]) for i in pool]
        source_stream = cycle_batches(pool_lengths, source_batch, seed + 1, cfg["bucket"])

        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n.lower()]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n.lower())]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"])
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg["warmup_ratio"] * total), total)
        dev = run.features("dev") if "dev" in run.records else None
        best: dict[str, float] | None = None
        best_step, started, samples, kept_sum, kept_count = 0, time.perf_counter(), 0, 0.0, 0
        task = run.progress.add_task("train", total=total, loss=float("nan"), rate=0.0) if run.progress else None
        log = open(run.dir / "metrics.jsonl", "a", encoding="utf-8")
        try:
            for step in range(1, total + 1):
                model.train()
                loss = torch.zeros((), device=self.device)
                step_figures: dict[str, float] = {}
                target_view = source_view = None
                if self.use_target:
                    indices = next(target_stream)
                    batch = move_to(app.collate([target[i] for i in indices]), self.device)
                    with accelerator.autocast():
                        outputs, features = domain_model.run(batch, TARGET)
                    loss = loss + outputs["loss"]
                    target_view = {"features": features, "logits": outputs["logits"], "labels": batch["labels"],
                                   "indices": indices}
                    samples += len(indices)
                if self.use_source:
                    indices = [pool[i] for i in next(source_stream)]
                    batch = move_to(app.collate([source[i] for i in indices]), self.device)
                    with accelerator.autocast():
                        outputs, features = domain_model.run(batch, SOURCE)
                    source_view = {"features": features, "logits": outputs["logits"], "labels": batch["labels"],
                                   "indices": indices, "target_logits": domain_model.target_head(features)}
                    keep = self.select(step, source_view, target_view or {}).to(self.device)
                    per_example = torch.nn.functional.cross_entropy(outputs["logits"].float(), batch["labels"],
                                                                    reduction="none")
                    weight = float(self.opts.get("source_weight", 1.0))
                    loss = loss + weight * (keep * per_example).sum() / len(indices)
                    kept_sum += float(keep.sum())
                    kept_count += len(indices)
                    samples += len(indices)
                    step_figures["kept"] = float(keep.mean())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg["max_grad_norm"]:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
                optimizer.step()
                scheduler.step()
                step_figures.update(self.after_step(step, model))
                log.write(json.dumps({"step": step, "loss": round(float(loss.detach()), 5),
                                      **{k: round(v, 5) for k, v in step_figures.items()}}) + "\n")
                if task is not None:
                    run.progress.update(task, advance=1, loss=float(loss.detach()),
                                        rate=samples / max(time.perf_counter() - started, 1e-9))
                if dev is not None and (step % eval_every == 0 or step == total):
                    metrics = self.evaluate(domain_model, dev)
                    log.write(json.dumps({"step": step, "eval": metrics}) + "\n")
                    log.flush()
                    if best is None or metrics[app.main_metric] > best[app.main_metric]:
                        best, best_step = metrics, step
                        run.save_artifact(domain_model.target_model(), metrics)
            if dev is None:  # no dev data: the last model is the result
                run.save_artifact(domain_model.target_model(), {})
        finally:
            log.close()
        rows = self.selection_rows(run)
        self.write_selection(run, rows)
        result = {f"dev_{key}": value for key, value in (best or {}).items()}
        result.update(self.selection_distances(run, rows))
        if "test" in run.records:
            from etk_core.artifact import load_artifact

            best_model = load_artifact(run.dir).model
            result.update({f"test_{k}": v for k, v in run.evaluate(best_model, "test").items()})
        result.update({"steps": total, "best_step": best_step,
                       "train_samples_per_s": samples / max(time.perf_counter() - started, 1e-9)})
        if kept_count:
            result["source_kept"] = kept_sum / kept_count
        return result

    def evaluate(self, domain_model: Any, features: list[dict[str, Any]]) -> dict[str, float]:
        """The app's metrics of the target model on `features`."""
        from etk_core.predict import evaluate_features

        return evaluate_features(domain_model.target_model(), self.run_ctx.app, features,
                                 self.run_ctx.config["train"]["eval_batch_size"], self.device)

    def selection_distances(self, run: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
        """MMD² (within labels) of samples of the selected and of the rejected source to the target, in the final
        shared representation (empty without a selection report or with too few examples to compare)."""
        from etk_instancetl.domain_distance import selection_mmd

        size = int(self.opts.get("distance_sample", 0))
        selected = [row["index"] for row in rows if row["selected"]]
        rejected = [row["index"] for row in rows if not row["selected"]]
        if size <= 0 or min(len(selected), len(rejected)) < 2:
            return {}
        rng = random.Random(run.config["seed"])
        source, target = run.features("source"), run.features("target")

        def sample(indices: list[int]) -> list[int]:
            return sorted(rng.sample(indices, min(size, len(indices))))

        def encode(features: list[dict[str, Any]]) -> tuple[Any, Any]:
            import numpy as np

            return (self.domain_model.representations(run.app, features, run.config["train"]["eval_batch_size"],
                                                      self.device), np.array([f["label"] for f in features]))

        return selection_mmd(*encode([target[i] for i in sample(list(range(len(target))))]),
                             *encode([source[i] for i in sample(selected)]),
                             *encode([source[i] for i in sample(rejected)]))

    def write_selection(self, run: Any, rows: list[dict[str, Any]]) -> None:
        """The selection report: one JSON line per source example, most probably selected first."""
        if not rows:
            return
        records = run.records["source"]
        path = run.dir / SELECTION_FILE
        with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as handle:
            for row in sorted(rows, key=lambda r: -r["probability"]):
                record = records[row["index"]]
                row = {**row, "where": record.get("_where"), "label": record.get("label"),
                       "text": record.get("text"), "text_pair": record.get("text_pair")}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        path.with_suffix(".tmp").replace(path)


def reward_sample(features: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, Any]]:
    """A fixed random sample of the target dev features (the same for every reward)."""
    order = list(range(len(features)))
    random.Random(seed).shuffle(order)
    return [features[i] for i in sorted(order[:size])]
