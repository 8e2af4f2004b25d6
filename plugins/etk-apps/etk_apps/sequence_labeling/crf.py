"""A linear-chain CRF in PyTorch: transition, start and end scores; batched forward algorithm; the NLL loss.

Decoding (Viterbi) is not here: it runs in numpy on the exported score table (`viterbi.py`), the same for the
PyTorch and ONNX backends. Masks are prefix masks: `mask[b, :length_b]` is true, the rest false, length >= 1.
"""

from __future__ import annotations

import torch
from torch import nn


class CRF(nn.Module):
    """Scores `start[y0] + sum_t emission[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_last]`.

    The parameters hold the scores divided by `lr_mult`, so that AdamW (whose step size does not depend on the
    gradient's scale) moves the scores `lr_mult` times faster than the encoder under one learning rate."""

    def __init__(self, num_tags: int, lr_mult: float = 1.0) -> None:
        super().__init__()
        if lr_mult <= 0:
            raise ValueError(f"lr_mult must be positive, got {lr_mult}")
        self.num_tags = num_tags
        self.lr_mult = float(lr_mult)
        self.transitions_raw = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1) / self.lr_mult)
        self.start_raw = nn.Parameter(torch.zeros(num_tags))
        self.end_raw = nn.Parameter(torch.zeros(num_tags))

    @property
    def transitions(self) -> torch.Tensor:
        """`[T, T]`: score of moving from tag i to tag j."""
        return self.transitions_raw * self.lr_mult

    @property
    def start(self) -> torch.Tensor:
        return self.start_raw * self.lr_mult

    @property
    def end(self) -> torch.Tensor:
        return self.end_raw * self.lr_mult

    def table(self) -> torch.Tensor:
        """`[T + 2, T]`: the transitions, then the start row, then the end row (the layout `viterbi.py` reads)."""
        return torch.cat([self.transitions, self.start[None], self.end[None]], dim=0)

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`log Z` per sequence, `[B]`, by the forward algorithm (log-sum-exp over time, carried past the end)."""
        emissions = emissions.float()
        mask = mask.bool()
        alpha = self.start[None] + emissions[:, 0]  # [B, T]
        transitions = self.transitions[None]  # [1, from, to]
        for t in range(1, emissions.shape[1]):
            stepped = torch.logsumexp(alpha[:, :, None] + transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], stepped, alpha)
        return torch.logsumexp(alpha + self.end[None], dim=1)

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Score of the given tag paths, `[B]` (`tags [B, W]`; entries past the end are ignored)."""
        emissions = emissions.float()
        mask = mask.bool()
        tags = tags.masked_fill(~mask, 0)
        weights = mask.float()
        emitted = emissions.gather(2, tags[:, :, None])[:, :, 0]  # [B, W]
        total = self.start[tags[:, 0]] + (emitted * weights).sum(dim=1)
        if tags.shape[1] > 1:
            moves = self.transitions[tags[:, :-1], tags[:, 1:]]  # [B, W - 1]
            total = total + (moves * weights[:, 1:]).sum(dim=1)
        last = mask.long().sum(dim=1).clamp(min=1) - 1
        return total + self.end[tags.gather(1, last[:, None])[:, 0]]

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The loss: mean over sequences of `log Z - score(y)`."""
        return (self.log_partition(emissions, mask) - self.score(emissions, tags, mask)).mean()
