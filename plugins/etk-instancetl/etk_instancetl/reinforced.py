"""`rtl` (Reinforced Transfer Learning, Qu et al. WSDM 2019) and `mgtl` (Minimax Game TL, Wang et al. KDD 2019):
an actor-critic selector keeps or drops each source example of a batch; rewards come from the target dev
sample (delayed: the change of a metric over an episode of steps) and, for mgtl, from a domain
discriminator (immediate: how target-like each kept example looks)."""

from __future__ import annotations

from typing import Any, ClassVar

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_instancetl.transfer import (
    COMMON_OPTIONS,
    SELECTION_REPORT_OPTIONS,
    SELECTOR_OPTIONS,
    InstanceTransfer,
    reward_sample,
)


class ReinforcedSelection(InstanceTransfer):
    """Actor-critic selection with the delayed target-dev reward (the base of rtl and mgtl)."""

    roles: ClassVar[tuple[str, ...]] = ("target", "source", "dev")
    optional_roles: ClassVar[tuple[str, ...]] = ("test",)
    options: ClassVar[dict[str, Option]] = {**COMMON_OPTIONS, **SELECTOR_OPTIONS, **SELECTION_REPORT_OPTIONS}
    #: Weight beta of the delayed reward next to the immediate ones.
    beta: float = 1.0
    #: Whether the delayed reward is also divided by its running spread (rtl: it is the only reward).
    scale_delayed: bool = True

    def prepare_selection(self, run: Any, domain_model: Any) -> None:
        from etk_instancetl.selector import Episode

        self.metric = self.opts["reward_metric"]
        self.rewards = reward_sample(run.features("dev"), self.opts["reward_dev_size"], run.config["seed"])
        self.selector = None
        self.episode = Episode()
        self.seen: dict[int, list[float]] = {}  # source index -> [times seen, times kept, last keep probability]
        self.last_reward_metric = self.reward_metric()

    def _new_selector(self, state_size: int) -> Any:
        from etk_instancetl.selector import ActorCritic

        return self.engine.broadcast_module(ActorCritic(
            state_size, self.opts["selector_hidden"], self.opts["selector_lr"], self.opts["initial_keep"],
            self.opts["entropy_weight"], mean=self.engine.mean, sync=self.engine.sync_gradients))

    def selection_state(self) -> dict[str, Any]:
        return {"selector": self.selector.state() if self.selector is not None else None,
                "episode": self.episode.state_dict(), "last_reward_metric": self.last_reward_metric,
                "seen": [[index, *values] for index, values in self.seen.items()]}

    def load_selection_state(self, state: dict[str, Any]) -> None:
        from etk_instancetl.selector import Episode

        if state["selector"] is not None:
            self.selector = self._new_selector(len(state["selector"]["weights"]["state_mean"]))
            self.selector.restore(state["selector"])
        self.episode = Episode.from_state(state["episode"])
        self.last_reward_metric = state["last_reward_metric"]
        self.seen = {int(row[0]): [int(row[1]), int(row[2]), float(row[3])] for row in state["seen"]}

    def reward_metric(self) -> float:
        """The reward metric of the current target model on the fixed dev sample."""
        import numpy as np

        from etk_core.training.evaluation import predict_outputs

        model = self.domain_model.target_model()
        outputs = predict_outputs(model, self.run_ctx.app, self.rewards,
                                  self.run_ctx.config["train"]["eval_batch_size"], self.device)
        if self.metric == "neg_loss":
            logits = np.asarray(outputs["logits"], dtype=np.float64)
            labels = np.array([f["label"] for f in self.rewards])
            log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
            return float(log_probs[np.arange(len(labels)), labels].mean())
        metrics = self.run_ctx.app.metrics(outputs, self.rewards)
        if self.metric not in metrics:
            raise ConfigError(f"algo.reward_metric {self.metric!r} is not one of neg_loss, {', '.join(metrics)}")
        return float(metrics[self.metric])

    def immediate_rewards(self, states: Any, actions: Any, source: dict[str, Any],
                          target: dict[str, Any]) -> Any:
        """Per-example rewards known at once (none for rtl)."""
        return None

    def select(self, step: int, source: dict[str, Any], target: dict[str, Any]) -> Any:
        import torch

        from etk_instancetl.selector import selector_state

        source_probs = torch.softmax(source["logits"].detach().float(), dim=-1)
        target_probs = torch.softmax(source["target_logits"].float(), dim=-1)
        states = selector_state(source["features"].float(), source_probs, target_probs, source["labels"]).cpu()
        if self.selector is None:
            self.selector = self._new_selector(states.shape[-1])
        actions, keep_probs = self.selector.act(states, self.generator)
        if step <= self.opts["warm_start_steps"]:
            actions = torch.ones_like(actions)
        self.episode.add(states, actions, self.immediate_rewards(states, actions, source, target))
        for index, action, prob in zip(source["indices"], actions.tolist(), keep_probs.tolist()):
            seen = self.seen.setdefault(index, [0, 0, 0.0])
            seen[0] += 1
            seen[1] += int(action)
            seen[2] = prob
        return actions

    def after_step(self, step: int, model: Any) -> dict[str, float]:
        from etk_instancetl.selector import Episode

        if step % self.opts["episode_steps"]:
            return {}
        value = self.reward_metric()
        delayed, self.last_reward_metric = value - self.last_reward_metric, value
        figures = {"reward": delayed, "reward_metric": value}
        if step > self.opts["warm_start_steps"] and self.selector is not None and len(self.episode):
            figures.update(self.selector.update(self.episode, delayed, self.beta, self.scale_delayed))
        self.episode = Episode()
        return figures

    def selection_rows(self, run: Any) -> list[dict[str, Any]]:
        merged: dict[int, list[float]] = {}  # every replica's view (each saw its own source batches)
        for seen_by in self._all_replicas(self.seen):
            for index, (seen, kept, prob) in seen_by.items():
                total = merged.setdefault(index, [0, 0, 0.0, 0])
                total[0], total[1], total[2], total[3] = total[0] + seen, total[1] + kept, total[2] + prob, total[3] + 1
        return [{"index": index, "probability": round(prob / replicas, 4), "selected": prob / replicas >= 0.5,
                 "seen": seen, "kept": kept} for index, (seen, kept, prob, replicas) in merged.items()]


class Rtl(ReinforcedSelection):
    """rtl: the selector learns from the delayed reward alone."""

    name = "rtl"
    description = "Reinforced Transfer Learning: actor-critic source selection, delayed target-dev reward"


class Mgtl(ReinforcedSelection):
    """mgtl: selector, discriminator and TL module in a minimax game; immediate discriminator rewards."""

    name = "mgtl"
    description = ("Minimax Game TL: selector + domain discriminator + TL module, immediate discriminator "
                   "rewards plus the delayed target-dev reward")
    options: ClassVar[dict[str, Option]] = {
        **ReinforcedSelection.options,
        "beta": Option(float, 1.0, "weight of the delayed target-dev reward next to the discriminator's",
                       min=0),
        "discriminator_lr": Option(float, 1e-3, "Adam learning rate of the domain discriminator", above=0),
    }

    scale_delayed = False  # r_i = r_i^D + beta * (change of the dev metric), as the metric's own units

    def prepare_selection(self, run: Any, domain_model: Any) -> None:
        super().prepare_selection(run, domain_model)
        self.beta = float(self.opts["beta"])
        self.discriminator = None
        self.discriminator_accuracy: list[float] = []

    def immediate_rewards(self, states: Any, actions: Any, source: dict[str, Any],
                          target: dict[str, Any]) -> Any:
        """Update D on target vs the kept source, then reward each kept example by how target-like D finds it
        (relative to the batch mean; dropped examples get 0)."""
        from etk_instancetl.selector import Discriminator

        source_h = source["features"].detach().float().cpu()
        target_h = target["features"].detach().float().cpu()
        if self.discriminator is None:
            self.discriminator = self.engine.broadcast_module(Discriminator(
                source_h.shape[-1], self.opts["selector_hidden"], self.opts["discriminator_lr"],
                sync=self.engine.sync_gradients))
        import torch

        kept = actions.bool()
        # every replica steps the discriminator together (its gradients are averaged) when any kept some
        if float(self.engine.mean(torch.tensor([float(kept.any())]))) > 0:
            accuracy = self.discriminator.update(target_h, source_h[kept])
            if kept.any():
                self.discriminator_accuracy.append(accuracy)
        target_like = self.discriminator.prob_target(source_h)
        return actions * (target_like - target_like.mean())

    def selection_state(self) -> dict[str, Any]:
        return {**super().selection_state(), "discriminator_accuracy": list(self.discriminator_accuracy),
                "discriminator": self.discriminator.state() if self.discriminator is not None else None}

    def load_selection_state(self, state: dict[str, Any]) -> None:
        from etk_instancetl.selector import Discriminator

        super().load_selection_state(state)
        self.discriminator_accuracy = list(state["discriminator_accuracy"])
        if state["discriminator"] is not None:
            weights = state["discriminator"]["weights"]
            self.discriminator = Discriminator(weights["net.0.weight"].shape[1], self.opts["selector_hidden"],
                                               self.opts["discriminator_lr"], sync=self.engine.sync_gradients)
            self.discriminator.restore(state["discriminator"])

    def after_step(self, step: int, model: Any) -> dict[str, float]:
        figures = super().after_step(step, model)
        if self.discriminator_accuracy:
            figures["discriminator_accuracy"] = self.discriminator_accuracy[-1]
        return figures

    def summary(self, run: Any, results: dict[str, Any]) -> dict[str, float]:
        result = super().summary(run, results)
        recent = self.discriminator_accuracy[-20:]
        if recent:
            result["discriminator_accuracy"] = sum(recent) / len(recent)
        return result
