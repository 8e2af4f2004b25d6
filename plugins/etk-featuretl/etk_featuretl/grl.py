"""The gradient-reversal layer (Ganin & Lempitsky, 2015): the identity going forward; going backward it
multiplies the gradient by -scale, so whatever reads its output (a domain discriminator) is trained to tell
domains apart while everything before it is pushed the other way, towards features the domains share."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(inputs: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """`inputs` unchanged; their gradient multiplied by -`scale` on the way back."""
    return _Reverse.apply(inputs, scale)


class GradientReversal(nn.Module):
    """A module form of `reverse_gradient`, to put in front of an adversary."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(inputs, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
