"""The instance selector (an actor-critic policy over source examples) and the domain discriminator."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

#: Averages a tensor over the data-parallel replicas (identity in one process).
Mean = Callable[[torch.Tensor], torch.Tensor]
#: Averages the gradients of parameters over the replicas (nothing in one process).
SyncGradients = Callable[[list[torch.Tensor]], None]


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _no_sync(parameters: list[torch.Tensor]) -> None:
    return None


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, outputs))


def selector_state(features: torch.Tensor, source_probs: torch.Tensor, target_probs: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
    """s_i = [shared representation h_i; p(y|x_i) from the source head; p(y|x_i) from the target head;
    one-hot y_i], all detached. (The target head's belief is our addition: it shows source examples whose
    label the target task disagrees with.)"""
    one_hot = nn.functional.one_hot(labels, source_probs.shape[-1]).to(features.dtype)
    # h at unit length: raw encoder features are large and would drown the few probability inputs
    unit = features.detach() / features.detach().norm(dim=-1, keepdim=True).clamp(min=1e-6)
    return torch.cat([unit, source_probs.detach().to(features.dtype),
                      target_probs.detach().to(features.dtype), one_hot], dim=-1)


@dataclass
class Episode:
    """The selector's decisions since the last delayed reward: states, actions and immediate rewards."""

    states: list[torch.Tensor] = field(default_factory=list)
    actions: list[torch.Tensor] = field(default_factory=list)
    immediate: list[torch.Tensor] = field(default_factory=list)

    def add(self, state: torch.Tensor, action: torch.Tensor, immediate: torch.Tensor | None = None) -> None:
        self.states.append(state)
        self.actions.append(action)
        self.immediate.append(immediate if immediate is not None else torch.zeros(len(action)))

    def __len__(self) -> int:
        return sum(len(action) for action in self.actions)

    def state_dict(self) -> dict[str, Any]:
        return {"states": list(self.states), "actions": list(self.actions), "immediate": list(self.immediate)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Episode:
        return cls(list(state["states"]), list(state["actions"]), list(state["immediate"]))


class ActorCritic(nn.Module):
    """pi(a=1|s) = sigmoid(MLP(s)); V(s) = MLP(s); updated by the advantage R - V(s)."""

    def __init__(self, state_size: int, hidden: int = 128, lr: float = 1e-3, initial_keep: float = 0.5,
                 entropy_weight: float = 0.0, mean: Mean = _same, sync: SyncGradients = _no_sync) -> None:
        super().__init__()
        # under data parallelism every replica's copy sees its own batches: statistics and gradients are
        # averaged over the replicas, so that the copies stay one selector
        self.mean, self.sync = mean, sync
        self.actor = _mlp(state_size, hidden, 1)
        self.critic = _mlp(state_size, hidden, 1)
        nn.init.zeros_(self.actor[-1].weight)  # every example starts with the same keep probability
        nn.init.constant_(self.actor[-1].bias, math.log(initial_keep / (1.0 - initial_keep)))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self.reward_mean, self.reward_var, self.rewards_seen = 0.0, 1.0, 0
        self.entropy_weight = entropy_weight
        self.register_buffer("state_mean", torch.zeros(state_size))
        self.register_buffer("state_var", torch.ones(state_size))
        self.states_seen = 0

    def observe(self, states: torch.Tensor) -> None:
        """Fold a batch of states into the running mean and variance of each state input."""
        count = len(states)
        total = self.states_seen + count
        batch_mean = self.mean(states.mean(0))
        batch_var = self.mean(states.pow(2).mean(0)) - batch_mean.pow(2)
        delta = batch_mean - self.state_mean
        spread = self.state_var * self.states_seen + batch_var.clamp(min=0.0) * count \
            + delta.pow(2) * self.states_seen * count / total
        self.state_mean += delta * count / total
        self.state_var = spread / total
        self.states_seen = total

    def standardise(self, states: torch.Tensor) -> torch.Tensor:
        """States at zero mean and unit spread per input. Why: the encoder's features share a large common
        component, and a policy gradient from one reward per batch then moves the keep probability of every
        example alike; centred inputs let it move useful and harmful examples apart."""
        return (states - self.state_mean) / self.state_var.clamp(min=1e-8).sqrt()

    def centre(self, reward: float, scale: bool = False) -> float:
        """The delayed reward minus its running mean (the metric's improvement shrinks as training goes on,
        which no state-dependent critic could anticipate); with `scale`, also divided by its running spread
        (for a selector with no other reward, so that it learns at the same pace whatever the metric)."""
        self.rewards_seen += 1
        rate = max(0.05, 1.0 / self.rewards_seen)
        delta = reward - self.reward_mean
        self.reward_mean += rate * delta
        if self.rewards_seen == 1:
            return 0.0
        self.reward_var = (1 - rate) * (self.reward_var + rate * delta * delta)
        return delta / max(math.sqrt(self.reward_var), 1e-8) if scale else delta

    def state(self) -> dict[str, Any]:
        """Weights, optimiser and running statistics, for checkpoints."""
        return {"weights": self.state_dict(), "optimizer": self.optimizer.state_dict(), "states_seen": self.states_seen,
                "rewards": [self.reward_mean, self.reward_var, self.rewards_seen]}

    def restore(self, state: dict[str, Any]) -> None:
        """Load what `state` returned."""
        self.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.states_seen = int(state["states_seen"])
        self.reward_mean, self.reward_var, self.rewards_seen = state["rewards"]

    def keep_probability(self, states: torch.Tensor) -> torch.Tensor:
        """pi(a=1|s) per state."""
        with torch.no_grad():
            return torch.sigmoid(self.actor(self.standardise(states)).squeeze(-1))

    def act(self, states: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample keep (1) / drop (0) per state; returns (actions, probabilities)."""
        self.observe(states)
        probs = self.keep_probability(states)
        actions = (torch.rand(probs.shape, generator=generator) < probs).float()
        return actions, probs

    def update(self, episode: Episode, delayed: float, beta: float = 1.0, scale: bool = False) -> dict[str, float]:
        """One actor-critic step on the episode with returns R_i = immediate_i + beta * centred delayed."""
        delayed = self.centre(delayed, scale)
        states = self.standardise(torch.cat(episode.states))
        actions = torch.cat(episode.actions)
        returns = torch.cat(episode.immediate).to(states.dtype) + beta * delayed
        values = self.critic(states).squeeze(-1)
        advantage = (returns - values).detach()
        logits = self.actor(states).squeeze(-1)
        log_prob = -nn.functional.binary_cross_entropy_with_logits(logits, actions, reduction="none")
        probs = torch.sigmoid(logits)
        entropy = -(probs * torch.log(probs.clamp(min=1e-8)) + (1 - probs) * torch.log((1 - probs).clamp(min=1e-8)))
        # the entropy bonus keeps the policy from saturating on the reward's noise before the signal shows
        actor_loss = -(advantage * log_prob).mean() - self.entropy_weight * entropy.mean()
        critic_loss = ((returns - values) ** 2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        (actor_loss + critic_loss).backward()
        self.sync(list(self.parameters()))
        self.optimizer.step()
        return {"actor_loss": float(actor_loss.detach()), "critic_loss": float(critic_loss.detach()),
                "mean_return": float(returns.mean())}


class Discriminator(nn.Module):
    """D(h) = P(target | h); maximises sum_target log D + sum_selected-source log(1 - D)."""

    def __init__(self, size: int, hidden: int = 128, lr: float = 1e-3, sync: SyncGradients = _no_sync) -> None:
        super().__init__()
        self.net = _mlp(size, hidden, 1)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self.sync = sync

    def state(self) -> dict[str, Any]:
        """Weights and optimiser, for checkpoints."""
        return {"weights": self.state_dict(), "optimizer": self.optimizer.state_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        """Load what `state` returned."""
        self.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])

    def prob_target(self, features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(self.net(features.detach()).squeeze(-1))

    def update(self, target: torch.Tensor, source: torch.Tensor) -> float:
        """One step on target (label 1) vs selected source (label 0) features; returns its balanced accuracy
        before the step (0.5: it cannot tell them apart)."""
        features = torch.cat([target.detach(), source.detach()])
        labels = torch.cat([torch.ones(len(target)), torch.zeros(len(source))]).to(features.dtype)
        logits = self.net(features).squeeze(-1)
        correct = ((logits > 0).to(labels.dtype) == labels).float()
        accuracy = 0.5 * float(correct[: len(target)].mean()) + 0.5 * float(correct[len(target):].mean()) \
            if len(source) else float(correct.mean())
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.sync(list(self.parameters()))
        self.optimizer.step()
        return accuracy
