"""Decomposable attention (DAM, Parikh et al. 2016) and DAM+ (DAM with a BiCNN branch).

DAM: ā = ReLU(W_p a), b̄ = ReLU(W_p b) (projection to 200); attend: e_ij = F(ā_i)·F(b̄_j) with F a
Dense(200, ReLU); β_i = Σ_j softmax_j(e_ij) b̄_j and α_j = Σ_i softmax_i(e_ij) ā_i (padding masked);
compare: v1_i = G([ā_i; β_i]), v2_j = G([b̄_j; α_j]) with G a Dense(200, ReLU); aggregate:
[Σ v1, Σ v2, max v1, max v2] over real positions -> dropout -> Dense(200, ReLU) -> Dense(C).

DAM+: concat(Dense(200, ReLU)(DAM aggregate), Dense(200, ReLU)(BiCNN features)) -> dropout -> Dense(C);
both branches share the embedding table. [choice] dropout (app.classic_dropout) only before the dense
layers: dropout inside the attention (on ā, b̄) kept DAM from learning the alignment on small data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.classic.bicnn import BiCNNFeatures, PairClassifier
from etk_apps.classic.layers import embed, masked_max, masked_softmax
from etk_apps.classic.textcnn import classification_output


class DAMFeatures(nn.Module):
    """The aggregated comparison vector [Σ v1, Σ v2, max v1, max v2] (4 x hidden)."""

    def __init__(self, dim: int, hidden: int = 200) -> None:
        super().__init__()
        self.project = nn.Linear(dim, hidden)
        self.attend = nn.Linear(hidden, hidden)
        self.compare = nn.Linear(2 * hidden, hidden)
        self.out_dim = 4 * hidden

    def forward(self, a: torch.Tensor, a_mask: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor) -> torch.Tensor:
        a_bar = torch.relu(self.project(a))
        b_bar = torch.relu(self.project(b))
        scores = torch.bmm(torch.relu(self.attend(a_bar)), torch.relu(self.attend(b_bar)).transpose(1, 2))
        beta = torch.bmm(masked_softmax(scores, b_mask.unsqueeze(1), dim=2), b_bar)  # (B, La, H)
        alpha = torch.bmm(masked_softmax(scores, a_mask.unsqueeze(2), dim=1).transpose(1, 2), a_bar)  # (B, Lb, H)
        v1 = torch.relu(self.compare(torch.cat([a_bar, beta], dim=-1)))
        v2 = torch.relu(self.compare(torch.cat([b_bar, alpha], dim=-1)))
        a_weights = a_mask.unsqueeze(-1).to(v1.dtype)
        b_weights = b_mask.unsqueeze(-1).to(v2.dtype)
        return torch.cat([(v1 * a_weights).sum(dim=1), (v2 * b_weights).sum(dim=1),
                          masked_max(v1, a_mask), masked_max(v2, b_mask)], dim=-1)


class DAM(PairClassifier):
    """Text pair -> label logits by soft alignment of words."""

    def __init__(self, embedding: nn.Embedding, num_labels: int, hidden: int = 200, dropout: float = 0.5) -> None:
        super().__init__(embedding, DAMFeatures(embedding.embedding_dim, hidden), num_labels, hidden, dropout)


class DAMPlus(nn.Module):
    """DAM and BiCNN features, each through its own Dense(200, ReLU), joined -> label logits."""

    def __init__(self, embedding: nn.Embedding, num_labels: int, widths: tuple[int, ...] = (2, 3, 4),
                 filters: int = 200, hidden: int = 200, dropout: float = 0.5, abs_difference: bool = False) -> None:
        super().__init__()
        self.embedding = embedding
        self.dam = DAMFeatures(embedding.embedding_dim, hidden)
        self.bicnn = BiCNNFeatures(embedding.embedding_dim, widths, filters, abs_difference)
        self.dropout = nn.Dropout(dropout)
        self.dam_dense = nn.Linear(self.dam.out_dim, hidden)
        self.bicnn_dense = nn.Linear(self.bicnn.out_dim, hidden)
        self.head = nn.Linear(2 * hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pair_input_ids: torch.Tensor,
                pair_attention_mask: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        a = embed(self.embedding, input_ids, attention_mask)
        b = embed(self.embedding, pair_input_ids, pair_attention_mask)
        dam = torch.relu(self.dam_dense(self.dropout(self.dam(a, attention_mask, b, pair_attention_mask))))
        cnn = torch.relu(self.bicnn_dense(self.dropout(self.bicnn(a, attention_mask, b, pair_attention_mask))))
        return classification_output(self.head(self.dropout(torch.cat([dam, cnn], dim=-1))), labels)
