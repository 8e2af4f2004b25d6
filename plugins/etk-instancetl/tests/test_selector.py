"""The actor-critic selector learns, from one reward per batch, to keep the examples that earn it."""

from __future__ import annotations

import torch
from etk_instancetl.selector import ActorCritic, Episode


def _states(generator: torch.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder-like states: a large component every example shares, a small one telling the halves apart."""
    useful = torch.rand(count, generator=generator) < 0.5
    common = torch.full((count, 16), 3.0)
    spread = torch.randn(count, 16, generator=generator)
    signal = torch.zeros(count, 16)
    signal[:, 0] = torch.where(useful, 0.4, -0.4)
    return common + 0.5 * spread + signal, useful


def test_selector_learns_from_a_batch_reward_despite_a_shared_feature_component():
    """The reward of a batch is (#useful kept - #harmful kept) / batch size, as a delayed dev reward would be
    at best; the policy has to pull the two halves apart from that one number per batch."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    selector = ActorCritic(16, hidden=64, lr=1e-3, initial_keep=0.5, entropy_weight=0.01)
    for _ in range(800):
        states, useful = _states(generator, 32)
        actions, _ = selector.act(states, generator)
        reward = float((actions * (useful.float() * 2 - 1)).sum()) / len(actions)
        episode = Episode()
        episode.add(states, actions)
        selector.update(episode, reward, scale=True)
    states, useful = _states(generator, 2000)
    keep = selector.keep_probability(states)
    assert keep[useful].mean() > keep[~useful].mean() + 0.2, (keep[useful].mean(), keep[~useful].mean())


def test_running_state_statistics_match_the_batch_statistics():
    selector = ActorCritic(3)
    states = torch.randn(100, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 7.0])
    for chunk in states.split(7):
        selector.observe(chunk)
    assert torch.allclose(selector.state_mean, states.mean(0), atol=1e-5)
    assert torch.allclose(selector.state_var, states.var(0, unbiased=False), atol=1e-4)
