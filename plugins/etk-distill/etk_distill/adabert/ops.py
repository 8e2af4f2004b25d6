"""The 10 candidate operations of an AdaBERT edge, on token states laid out [batch, channels, tokens].

The convolutions are depthwise-separable (a depthwise kernel over the tokens, then a 1x1 mixing of the
channels), as DARTS's `sep_conv` and `dil_conv`: their cost grows only a little with the kernel, as the
relative costs of the spec say (.100/.104/.108). The dilated ones skip every other token (dilation 2), so
k=3/5/7 see 5/9/13 tokens. Every operation keeps the sequence length ("same" padding, stride 1); padded
positions are zeroed after it (`mask`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_distill.adabert.genotype import OPS

DILATION = 2


class SepConv(nn.Module):
    """Depthwise conv1d of kernel `kernel` (dilation `dilation`), then a pointwise conv mixing the channels."""

    def __init__(self, width: int, kernel: int, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(width, width, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation,
                                   groups=width, bias=False)
        self.pointwise = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Zero(nn.Module):
    """The edge that passes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_op(name: str, width: int) -> nn.Module:
    """The module of candidate operation `name` on `width` channels."""
    if name.startswith("conv"):
        return SepConv(width, int(name[len("conv"):]))
    if name.startswith("dil_conv"):
        return SepConv(width, int(name[len("dil_conv"):]), DILATION)
    if name == "max_pool":  # inputs are ReLU outputs (>= 0) with padding zeroed: padding never wins the max
        return nn.MaxPool1d(3, stride=1, padding=1)
    if name == "avg_pool":
        return nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False)
    if name == "identity":
        return nn.Identity()
    if name == "zero":
        return Zero()
    raise ValueError(f"unknown AdaBERT operation {name!r}; one of {', '.join(OPS)}")


class MixedOp(nn.Module):
    """Every candidate on one edge of the supernet: Σ_o w_o · o(x) for architecture weights w (a hard
    Gumbel-softmax sample: one-hot values with straight-through gradients); where `w` carries no gradient only
    the chosen operation runs."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(make_op(name, width) for name in OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not weights.requires_grad:
            chosen = int(weights.argmax())
            return self.candidates[chosen](x) * mask * weights[chosen]
        outputs = torch.stack([op(x) for op in self.candidates])  # [ops, batch, channels, tokens]
        return torch.einsum("o,obct->bct", weights.to(x.dtype), outputs) * mask


def op_parameters(module: Any) -> int:
    """Parameters of a module (for the size figures)."""
    return sum(parameter.numel() for parameter in module.parameters())
