"""Span extraction: PLM -> Linear(2) -> start/end logits over the passage; optional history answer embedding.

Non-passage tokens (question, separators, padding) get a large negative logit inside the graph, from the
batch's `passage_mask` (the CLS token stays open: it is the target when the answer is outside a window).
With `history=True` (HAE) the encoder gets `inputs_embeds` = word embeddings + HAE[history_mask], where
`history_mask` marks passage tokens inside an earlier turn's answer; the encoder adds positions and types.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.text_classify.model import hidden_size

#: Logit given to tokens that cannot start or end an answer (finite, so fp16 and ONNX stay exact).
MASKED = -10000.0


class SpanExtractor(nn.Module):
    """`encoder`, `head` (Linear to start/end) and, for HAE, `history_embeddings` (2 rows: m_t = 0, 1)."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1, history: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        width = hidden_size(encoder.config)
        std = getattr(encoder.config, "initializer_range", 0.02)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, 2)
        nn.init.normal_(self.head.weight, std=std)
        nn.init.zeros_(self.head.bias)
        self.history_embeddings: nn.Embedding | None = None
        if history:
            self.history_embeddings = nn.Embedding(2, width)
            nn.init.normal_(self.history_embeddings.weight, std=std)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, passage_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, history_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, Any]:
        inputs: dict[str, torch.Tensor] = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if self.history_embeddings is None:
            inputs["input_ids"] = input_ids
        else:
            if history_mask is None:
                history_mask = torch.zeros_like(input_ids)
            words = self.encoder.get_input_embeddings()(input_ids)
            inputs["inputs_embeds"] = words + self.history_embeddings(history_mask)
        hidden = self.encoder(**inputs).last_hidden_state
        logits = self.head(self.dropout(hidden))
        closed = passage_mask == 0
        start_logits = logits[..., 0].masked_fill(closed, MASKED)
        end_logits = logits[..., 1].masked_fill(closed, MASKED)
        outputs: dict[str, Any] = {"start_logits": start_logits, "end_logits": end_logits}
        if labels is not None:
            start_loss = nn.functional.cross_entropy(start_logits.float(), labels[:, 0])
            end_loss = nn.functional.cross_entropy(end_logits.float(), labels[:, 1])
            outputs["loss"] = (start_loss + end_loss) / 2
        return outputs
