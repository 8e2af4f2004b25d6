"""The PLM two-tower (bi-encoder) model: one shared encoder reads each text alone; u, v -> a pair head.

Heads: `mlp`: [u, v, |u - v|, u * v] -> dropout -> Linear(C) (Sentence-BERT's classifier), cross-entropy.
`cosine` (two labels): z = s * cos(u, v) + b with s (initialised to app.cosine_scale) and b (0) learnt;
logits = [-z/2, z/2], so P(second label) = sigmoid(z): the second label in sorted order (e.g. "1" of
"0"/"1") is the "similar" class, and s turns negative by training when the similar class sorts first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.classic.textcnn import classification_output
from etk_apps.text_classify.model import hidden_size, pool


class TwoTower(nn.Module):
    """`encoder` (shared by both texts) and the pair head."""

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "mean", head: str = "mlp",
                 dropout: float = 0.1, cosine_scale: float = 10.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.head_kind = head
        if head == "cosine":
            self.scale = nn.Parameter(torch.tensor(float(cosine_scale)))
            self.bias = nn.Parameter(torch.tensor(0.0))
        else:
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(4 * hidden_size(encoder.config), num_labels)
            nn.init.normal_(self.head.weight, std=getattr(encoder.config, "initializer_range", 0.02))
            nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pair_input_ids: torch.Tensor,
                pair_attention_mask: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        # both towers in one encoder call (the app pads both texts of a batch to one length)
        ids = torch.cat([input_ids, pair_input_ids], dim=0)
        mask = torch.cat([attention_mask, pair_attention_mask], dim=0)
        pooled = pool(self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask, self.pooling)
        u, v = pooled.reshape(2, -1, pooled.shape[-1]).unbind(0)
        if self.head_kind == "cosine":
            u_unit = u / u.norm(dim=-1, keepdim=True).clamp(min=1e-8)
            v_unit = v / v.norm(dim=-1, keepdim=True).clamp(min=1e-8)
            z = self.scale * (u_unit * v_unit).sum(dim=-1) + self.bias
            logits = torch.stack([-z / 2, z / 2], dim=-1)
        else:
            logits = self.head(self.dropout(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)))
        return classification_output(logits, labels)
