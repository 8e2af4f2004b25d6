"""BiCNN: one convolutional encoder shared by both texts, compared by their difference and product.

Per text: convolutions of widths 2, 3, 4 x 200 filters, ReLU, max over time, joined with the masked mean
of its embeddings -> l, r; then [l, r, l - r, l * r] -> dropout -> Dense(200, ReLU) -> Dense(C).
`app.abs_difference=true` uses |l - r| instead of l - r (see `layers.difference`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.classic.layers import ConvEncoder, difference, embed, masked_mean
from etk_apps.classic.textcnn import classification_output


class BiCNNFeatures(nn.Module):
    """[l, r, l - r, l * r] of a pair of embedded texts (also DAM+'s second branch)."""

    def __init__(self, dim: int, widths: tuple[int, ...] = (2, 3, 4), filters: int = 200,
                 abs_difference: bool = False) -> None:
        super().__init__()
        self.conv = ConvEncoder(dim, widths, filters, "relu")
        self.abs_difference = abs_difference
        self.out_dim = 4 * (self.conv.out_dim + dim)

    def side(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(embedded, mask), masked_mean(embedded, mask)], dim=-1)

    def forward(self, a: torch.Tensor, a_mask: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor) -> torch.Tensor:
        left, right = self.side(a, a_mask), self.side(b, b_mask)
        return torch.cat([left, right, difference(left, right, self.abs_difference), left * right], dim=-1)


class PairClassifier(nn.Module):
    """Both texts embedded, pair features, then dropout -> Dense(ReLU) -> Dense(C) (BiCNN, DAM)."""

    def __init__(self, embedding: nn.Embedding, features: nn.Module, num_labels: int, hidden: int,
                 dropout: float) -> None:
        super().__init__()
        self.embedding = embedding
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(features.out_dim, hidden)
        self.head = nn.Linear(hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pair_input_ids: torch.Tensor,
                pair_attention_mask: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        a = embed(self.embedding, input_ids, attention_mask)
        b = embed(self.embedding, pair_input_ids, pair_attention_mask)
        joined = self.features(a, attention_mask, b, pair_attention_mask)
        hidden = torch.relu(self.dense(self.dropout(joined)))
        return classification_output(self.head(hidden), labels)


class BiCNN(PairClassifier):
    """Text pair -> label logits through shared convolutions."""

    def __init__(self, embedding: nn.Embedding, num_labels: int, widths: tuple[int, ...] = (2, 3, 4),
                 filters: int = 200, hidden: int = 200, dropout: float = 0.5, abs_difference: bool = False) -> None:
        super().__init__(embedding, BiCNNFeatures(embedding.embedding_dim, widths, filters, abs_difference),
                         num_labels, hidden, dropout)

