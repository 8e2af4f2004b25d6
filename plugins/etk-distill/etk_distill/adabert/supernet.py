"""The search: the architecture weights (α_ij per edge, α_N for the depth), their hard Gumbel-softmax samples
with straight-through gradients, the efficiency loss, and the supernet with one classifier head per depth."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional

from etk_distill.adabert.genotype import COSTS, OPS, Genotype, argmax_genotype


def gumbel_straight_through(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """A hard Gumbel-softmax sample of each row: one-hot in the forward pass, the gradient of the relaxed
    softmax((logits + g) / τ) in the backward pass (straight-through)."""
    return functional.gumbel_softmax(logits, tau=tau, hard=True, dim=-1)


class Architecture(nn.Module):
    """α_ij ∈ R^10 for every edge of the cell (shared by all cells) and α_N ∈ R^{K_max+1} over the depths
    0..K_max; all zero at the start (every choice equally likely)."""

    def __init__(self, edges: int, max_cells: int) -> None:
        super().__init__()
        self.max_cells = max_cells
        self.edge_logits = nn.Parameter(torch.zeros(edges, len(OPS)))
        self.depth_logits = nn.Parameter(torch.zeros(max_cells + 1))
        self.register_buffer("costs", torch.tensor([COSTS[name] for name in OPS]), persistent=False)

    def sample(self, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(depth weights [K_max+1], operation weights [edges, ops]): hard samples, straight-through."""
        return gumbel_straight_through(self.depth_logits, tau), gumbel_straight_through(self.edge_logits, tau)

    def argmax_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The argmax architecture as one-hot weights (no gradient)."""
        with torch.no_grad():
            return (functional.one_hot(self.depth_logits.argmax(), self.depth_logits.numel()).float(),
                    functional.one_hot(self.edge_logits.argmax(-1), len(OPS)).float())

    def expected_depth(self) -> torch.Tensor:
        depths = torch.arange(self.max_cells + 1, dtype=self.depth_logits.dtype, device=self.depth_logits.device)
        return (self.depth_logits.softmax(-1) * depths).sum()

    def expected_cost(self) -> torch.Tensor:
        """L_E: the expected cost of the architecture, E[K]/K_max · mean_edges Σ_o softmax(α_ij)_o · cost(o)."""
        cell = (self.edge_logits.softmax(-1) * self.costs.to(self.edge_logits.dtype)).sum(-1).mean()
        return self.expected_depth() / self.max_cells * cell

    def genotype(self) -> Genotype:
        return argmax_genotype(self.edge_logits.detach().tolist(), self.depth_logits.detach().tolist())


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """The sentence vector as text_classify's model takes it: the first token (`cls`) or the mean over the
    real tokens (`mean`)."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class SearchModel(nn.Module):
    """The supernet encoder and a linear head per depth 0..K_max (pooled like the app's classifier):
    `depth_logits` gives the heads' logits under sampled architecture weights; `forward` (evaluation) the
    logits of the current argmax architecture."""

    def __init__(self, encoder: Any, num_labels: int, pooling: str = "cls", dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        width, std = encoder.config.hidden_size, encoder.config.initializer_range
        self.heads = nn.ModuleList(nn.Linear(width, num_labels) for _ in range(encoder.config.max_cells + 1))
        for head in self.heads:
            nn.init.normal_(head.weight, std=std)
            nn.init.zeros_(head.bias)

    def depth_logits(self, tensors: dict[str, torch.Tensor], op_weights: torch.Tensor,
                     depths: list[int]) -> dict[int, torch.Tensor]:
        """Logits of the heads at `depths`, the cells running with `op_weights` [edges, ops]."""
        encoder = self.encoder
        mask_ids = tensors["attention_mask"]
        embedded, mask = encoder.embed(tensors["input_ids"], mask_ids, tensors.get("token_type_ids"))
        states = encoder.cell_states(embedded, mask, op_weights, max(depths))
        return {depth: self.heads[depth](self.dropout(pool(encoder.summarise(states[depth], mask), mask_ids,
                                                            self.pooling)))
                for depth in depths}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict[str, Any]:
        depth_weights, op_weights = self.encoder.architecture.argmax_weights()
        depth = int(depth_weights.argmax())
        tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        logits = self.depth_logits(tensors, op_weights.to(input_ids.device), [depth])[depth]
        outputs: dict[str, Any] = {"logits": logits}
        if labels is not None:
            outputs["loss"] = functional.cross_entropy(logits.float(), labels)
        return outputs
