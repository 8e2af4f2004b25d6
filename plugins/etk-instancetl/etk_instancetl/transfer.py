"""The shared transfer base, a stage of the core's training engine: one shared encoder (any app model) with a
target and a source head, a `target` and a `source` stream (target batches never filtered), a step returning
the two losses, a fixed target-dev sample for rewards, and the log of what was selected. The algorithms
differ only in how they choose source examples (`select`) and what they keep for `--resume`."""

from __future__ import annotations

import json
import math
import random
from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Algorithm

SELECTION_FILE = "selection.jsonl"

COMMON_OPTIONS: dict[str, Option] = {
    "source_batch_size": Option((int, type(None)), None, "source examples per step (null: train.batch_size)",
                                min=1),
    "source_weight": Option(float, 1.0, "weight of the source loss (mean over the whole source batch, so "
                                        "dropping examples lowers the source's share)", min=0),
}
SELECTOR_OPTIONS: dict[str, Option] = {
    "reward_dev_size": Option(int, 300, "target-dev examples in the fixed reward sample", min=1),
    "reward_metric": Option(str, "accuracy", "the delayed reward is the change of this metric on the reward "
                                             "sample (an app metric, or neg_loss for the mean log-likelihood)"),
    "episode_steps": Option(int, 5, "training steps between two delayed rewards (one selector update each)",
                            min=1),
    "warm_start_steps": Option(int, 20, "first steps train on all source data (the selector only watches)",
                                min=0),
    "initial_keep": Option(float, 0.5, "keep probability of every source example before the selector learns",
                             min=0, max=1),
    "entropy_weight": Option(float, 0.01, "entropy bonus of the actor (keeps it exploring)", min=0),
    "selector_lr": Option(float, 1e-3, "Adam learning rate of the selector (actor and critic)", above=0),
    "selector_hidden": Option(int, 128, "hidden units of the actor, critic (and discriminator)", min=1),
}
SELECTION_REPORT_OPTIONS: dict[str, Option] = {
    "distance_sample": Option(int, 200, "after training, MMD of the selected and of the rejected source to the "
                                        "target over this many examples of each (0: skip)", min=0),
}


class InstanceTransfer(Algorithm):
    """Base of the instance-based TL algorithms and their baselines (not registered itself)."""

    roles: ClassVar[tuple[str, ...]] = ("target", "source")
    optional_roles: ClassVar[tuple[str, ...]] = ("dev", "test")
    options: ClassVar[dict[str, Option]] = COMMON_OPTIONS
    # under ddp each replica's selector acts on its own source batches; its statistics and gradients are
    # averaged over the replicas (one selector); megatron runs only an app model's own loss
    strategies: ClassVar[tuple[str, ...] | None] = ("single", "ddp")
    apps: ClassVar[tuple[str, ...] | None] = ("text_classify", "text_match")  # models with a `head` over logits
    own_step: ClassVar[bool] = True
    #: Whether source examples get their own output layer (False: one head for both domains).
    source_head: ClassVar[bool] = True
    #: Which losses a step uses.
    use_target: ClassVar[bool] = True
    use_source: ClassVar[bool] = True

    # -- hooks for the algorithms -------------------------------------------------------------------
    def prepare_selection(self, run: Any, domain_model: Any) -> None:
        """Before training (e.g. set up the selector and its reward sample)."""

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

    def selection_state(self) -> dict[str, Any]:
        """What the selection needs to resume exactly (selector, statistics), for checkpoints."""
        return {}

    def load_selection_state(self, state: dict[str, Any]) -> None:
        """Restore what `selection_state` returned."""

    # -- the engine's side --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"selection": self.selection_state()}
        if hasattr(self, "generator"):  # (a stage before training has none yet)
            state.update(kept=[self.kept_sum, self.kept_count], generator=self.generator.get_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = state

    def bind(self, run: Any) -> None:
        """Remember the run, its options and this process's engine."""
        self.run_ctx = run
        self.opts = run.config["algo"]
        self.engine = run.engine()
        self.device = self.engine.device()

    def stage(self, run: Any, name: str) -> Any:
        import torch

        from etk_core.training import Stage, Stream
        from etk_instancetl.heads import DomainModel

        self.bind(run)
        cfg, seed = run.config["train"], run.config["seed"]
        # each replica draws its own keep/drop actions
        self.generator = torch.Generator().manual_seed(seed + 7919 * self.engine.data_rank)
        self.kept_sum, self.kept_count = 0.0, 0
        model = run.build_model().to(self.device)
        self.domain_model = DomainModel(model, shared_head=not self.source_head)
        self.prepare_selection(run, self.domain_model)
        restored, self._restored = getattr(self, "_restored", None), None
        if restored:
            if "generator" in restored:
                self.kept_sum, self.kept_count = restored["kept"]
                self.generator.set_state(restored["generator"])
            self.load_selection_state(restored["selection"])
        target = run.features("target")
        streams: dict[str, Stream] = {}
        if self.use_target:
            streams["target"] = run.stream("target")
        pool = self.source_pool(run)
        if self.use_source:
            if not pool:
                raise ConfigError(f"algorithm {self.name!r}: no source examples to train on")
            streams["source"] = run.stream("source", self.opts.get("source_batch_size") or cfg["batch_size"],
                                           pool=pool, seed_offset=1)
        per_epoch = math.ceil(len(target) / cfg["batch_size"])  # every algorithm gets the same budget in steps
        total = cfg["max_steps"] or max(1, math.ceil(per_epoch * cfg["epochs"]))
        return Stage(name=name, model=model, streams=streams, step=self.step,
                     loss_weights={"source": float(self.opts.get("source_weight", 1.0))},
                     max_steps=total, dev=run.dev(), eval_model=self.domain_model.target_model,
                     on_step_end=lambda context: self.after_step(context.step, model))

    def step(self, context: Any, batches: dict[str, Any]) -> dict[str, Any]:
        """Target loss and the selected source examples' loss (mean over the whole source batch)."""
        import torch

        from etk_instancetl.heads import SOURCE, TARGET

        losses: dict[str, Any] = {}
        target_view: dict[str, Any] = {}
        if "target" in batches:
            batch = batches["target"]
            outputs, features = self.domain_model.run(batch.tensors, TARGET)
            losses["target"] = outputs["loss"]
            target_view = {"features": features, "logits": outputs["logits"], "labels": batch.tensors["labels"],
                           "indices": batch.indices}
        if "source" in batches:
            batch = batches["source"]
            labels = batch.tensors["labels"]
            outputs, features = self.domain_model.run(batch.tensors, SOURCE)
            source_view = {"features": features, "logits": outputs["logits"], "labels": labels,
                           "indices": batch.indices, "target_logits": self.domain_model.target_head(features)}
            keep = self.select(context.step + 1, source_view, target_view).to(features.device)
            per_example = torch.nn.functional.cross_entropy(outputs["logits"].float(), labels, reduction="none")
            losses["source"] = (keep * per_example).sum() / len(batch)
            self.kept_sum += float(keep.sum())
            self.kept_count += len(batch)
            context.log(kept=float(keep.mean()))
        return losses

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        from etk_core.training import default_summary

        rows = self.selection_rows(run)
        result = {key: value for key, value in default_summary(run, results).items() if key != "peak_rss_mib"}
        if self.engine.is_main_process:
            self.write_selection(run, rows)
            result.update(self.selection_distances(run, rows))
        train = results.get("train")
        result["best_step"] = train.best_step if train is not None else 0
        kept = self._all_replicas([self.kept_sum, self.kept_count])
        if sum(count for _, count in kept):
            result["source_kept"] = sum(k for k, _ in kept) / sum(count for _, count in kept)
        return result

    def _all_replicas(self, value: Any) -> list[Any]:
        """`value` from every data-parallel replica (this one's alone in one process)."""
        if self.engine.data_world == 1:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, value)
        return gathered

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
