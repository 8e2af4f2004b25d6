"""TextCNN (Kim, 2014): embeddings -> convolutions of widths 3, 4, 5 x 100 filters, ReLU, max over time ->
dropout 0.5 -> linear layer over the labels; cross-entropy loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.classic.layers import ConvEncoder, embed


def classification_output(logits: torch.Tensor, labels: torch.Tensor | None) -> dict[str, Any]:
    """`{"logits"}`, plus the cross-entropy `loss` when labels are given."""
    outputs: dict[str, Any] = {"logits": logits}
    if labels is not None:
        outputs["loss"] = nn.functional.cross_entropy(logits.float(), labels)
    return outputs


class TextCNN(nn.Module):
    """One text (or a pair joined by the tokenizer) -> label logits."""

    def __init__(self, embedding: nn.Embedding, num_labels: int, widths: tuple[int, ...] = (3, 4, 5),
                 filters: int = 100, dropout: float = 0.5) -> None:
        super().__init__()
        self.embedding = embedding
        self.conv = ConvEncoder(embedding.embedding_dim, widths, filters, "relu")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.conv.out_dim, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict[str, Any]:
        features = self.conv(embed(self.embedding, input_ids, attention_mask), attention_mask)
        return classification_output(self.head(self.dropout(features)), labels)
