"""HCNN: a sentence-encoding branch and a word-interaction branch over a text pair.

Encoding: one wide convolution (width 4, 300 filters, tanh) shared by both texts, max over time -> l, r.
Interaction: M = Ê_a Ê_bᵀ (word-by-word cosine similarities, zero at padding) -> conv 6x6, 8 maps, tanh
-> max-pool 4 -> conv 4x4, 16 maps, stride 3, tanh -> max-pool 2 -> flatten. Then
[M', l, r, l - r, l * r] -> dropout -> Dense(200, ReLU) -> Dense(C) (|l - r| with app.abs_difference=true).

M must have a fixed size for the flatten: the app pads both texts of every batch to `train.max_length`
(see `TextMatch.collate`). [choice] Both 2-D convolutions pad (3, then 2) and the pools round up, so any
max_length >= 1 works; the 2-D kernel sizes, maps, stride and pools are the spec's and fixed.
[choice] M holds cosines (the embeddings normalised to unit length; MatchPyramid's cosine variant), not the
spec's raw dot products E_aᵀE_b: raw products of N(0, 1) or GloVe-scale embeddings saturate the tanh
convolutions and HCNN stayed at chance on synthetic_pairs; cosines are scale-free.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.classic.layers import ConvEncoder, difference, embed
from etk_apps.classic.textcnn import classification_output


class Interaction(nn.Module):
    """The 2-D convolutional branch over the (length x length) interaction map."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 8, 6, padding=3), nn.Tanh(), nn.MaxPool2d(4, ceil_mode=True),
            nn.Conv2d(8, 16, 4, stride=3, padding=2), nn.Tanh(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Flatten())
        with torch.no_grad():
            self.out_dim = int(self.layers(torch.zeros(1, 1, length, length)).shape[-1])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a = a / a.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        b = b / b.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        return self.layers(torch.bmm(a, b.transpose(1, 2)).unsqueeze(1))


class HCNN(nn.Module):
    """Text pair (both padded to `length`) -> label logits."""

    def __init__(self, embedding: nn.Embedding, num_labels: int, length: int, widths: tuple[int, ...] = (4,),
                 filters: int = 300, hidden: int = 200, dropout: float = 0.5, abs_difference: bool = False) -> None:
        super().__init__()
        self.embedding = embedding
        self.length = length
        self.abs_difference = abs_difference
        self.encoder_conv = ConvEncoder(embedding.embedding_dim, widths, filters, "tanh", wide=True)
        self.interaction = Interaction(length)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(self.interaction.out_dim + 4 * self.encoder_conv.out_dim, hidden)
        self.head = nn.Linear(hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pair_input_ids: torch.Tensor,
                pair_attention_mask: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        a = embed(self.embedding, input_ids, attention_mask)
        b = embed(self.embedding, pair_input_ids, pair_attention_mask)
        left, right = self.encoder_conv(a, attention_mask), self.encoder_conv(b, pair_attention_mask)
        diff = difference(left, right, self.abs_difference)
        joined = torch.cat([self.interaction(a, b), left, right, diff, left * right], dim=-1)
        hidden = torch.relu(self.dense(self.dropout(joined)))
        return classification_output(self.head(hidden), labels)
