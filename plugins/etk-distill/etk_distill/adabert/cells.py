"""AdaBERT's cells on token states [batch, channels, tokens]: the searchable cell (a mixed operation on every
edge) and the derived cell (one operation per edge, zero edges dropped).

A cell takes the outputs of the two previous cells (nodes 0 and 1); each intermediate node j sums an edge
from every earlier node, node_j = Σ_{i<j} edge_ij(ReLU(node_i)); the cell's output is the 1x1 projection of
its intermediate nodes (concatenated) added to the previous cell's output and layer-normalised over the
channels (the residual keeps a stack of mostly parameter-free edges trainable).
"""

from __future__ import annotations

import torch
from torch import nn

from etk_distill.adabert.genotype import CELL_INPUTS, edges
from etk_distill.adabert.ops import MixedOp, make_op


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of [batch, channels, tokens]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _Cell(nn.Module):
    def __init__(self, width: int, nodes: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.nodes = nodes
        self.edges = edges(nodes)
        self.project = nn.Conv1d(nodes * width, width, 1)
        self.dropout = nn.Dropout(dropout)
        self.norm = ChannelNorm(width, eps=eps)

    def _output(self, states: list[torch.Tensor], previous: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        combined = self.project(torch.cat(states[CELL_INPUTS:], dim=1))
        return self.norm(previous + self.dropout(combined)) * mask


class SearchCell(_Cell):
    """A cell of the supernet: every edge a `MixedOp` weighted by the architecture's sample."""

    def __init__(self, width: int, nodes: int, dropout: float = 0.1, eps: float = 1e-12) -> None:
        super().__init__(width, nodes, dropout, eps)
        self.mixed = nn.ModuleList(MixedOp(width) for _ in self.edges)

    def forward(self, before: torch.Tensor, previous: torch.Tensor, op_weights: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """`op_weights` [edges, ops]: one (hard) sample of the architecture weights."""
        states, activated = [before, previous], [torch.relu(before), torch.relu(previous)]
        for j in range(CELL_INPUTS, CELL_INPUTS + self.nodes):
            node = sum(self.mixed[e](activated[i], op_weights[e], mask)
                       for e, (i, target) in enumerate(self.edges) if target == j)
            states.append(node)
            activated.append(torch.relu(node))
        return self._output(states, previous, mask)


class DerivedCell(_Cell):
    """A cell of the derived network: operation `ops[e]` on edge e; edges whose operation is `zero` are left
    out (a node without any incoming edge is zeros)."""

    def __init__(self, width: int, nodes: int, ops: tuple[str, ...], dropout: float = 0.1,
                 eps: float = 1e-12) -> None:
        super().__init__(width, nodes, dropout, eps)
        self.ops = tuple(ops)
        self.chosen = nn.ModuleDict({f"{i}_{j}": make_op(op, width)
                                     for (i, j), op in zip(self.edges, self.ops, strict=True) if op != "zero"})

    def forward(self, before: torch.Tensor, previous: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states, activated = [before, previous], [torch.relu(before), torch.relu(previous)]
        for j in range(CELL_INPUTS, CELL_INPUTS + self.nodes):
            incoming = [self.chosen[f"{i}_{j}"](activated[i]) * mask for i, target in self.edges
                        if target == j and f"{i}_{j}" in self.chosen]
            node = sum(incoming) if incoming else torch.zeros_like(previous)
            states.append(node)
            activated.append(torch.relu(node))
        return self._output(states, previous, mask)
