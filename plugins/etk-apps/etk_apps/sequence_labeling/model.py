"""The tagging models: PLM states (optionally through a BiLSTM) -> linear emissions; softmax or CRF loss.

`forward` returns `emissions [B, L, T]` at every sub-token position and `transitions [B, T + 2, T]`, the
score table that decoding uses (the CRF's transition/start/end scores, or zeros for the softmax head) repeated
per example, so that the exported graph alone carries everything the numpy Viterbi needs. With `labels`
(`[B, L]`, the tag id at each word's first sub-token, -100 elsewhere) it adds `loss`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from etk_apps.sequence_labeling.crf import CRF
from etk_apps.text_classify.model import hidden_size

IGNORE = -100
MODELS = ("softmax", "bert_crf", "bert_bilstm_crf")


def reverse_within_length(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps (`values [B, L, H]`); padded steps get arbitrary rows.

    Applying it twice gives back the real steps. Traced as gathers, so it exports with dynamic shapes."""
    lengths = attention_mask.long().sum(dim=1, keepdim=True)  # [B, 1]
    positions = torch.ones_like(attention_mask, dtype=torch.long).cumsum(dim=1) - 1  # [B, L]
    index = (lengths - 1 - positions).clamp(min=0)
    return values.gather(1, index[:, :, None].expand(-1, -1, values.shape[2]))


class MaskedBiLSTM(nn.Module):
    """A bidirectional LSTM whose outputs at real tokens do not depend on the padding after them.

    A forward LSTM reads the sequence; a second LSTM reads each sequence reversed within its own length (so
    it starts at the last real token, not at the padding); outputs are concatenated `[B, L, 2 * hidden]`."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden, batch_first=True)

    def forward(self, values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ahead, _ = self.forward_lstm(values)
        behind, _ = self.backward_lstm(reverse_within_length(values, attention_mask))
        return torch.cat([ahead, reverse_within_length(behind, attention_mask)], dim=2)


def first_subtokens(emissions: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Word-level `(emissions [B, W, T], tags [B, W], mask [B, W])`: the labelled positions moved to the
    front in order (a stable sort), W the most words in the batch."""
    labelled = labels != IGNORE
    order = torch.sort((~labelled).to(torch.int8), dim=1, stable=True).indices
    words = max(int(labelled.sum(dim=1).max()), 1)
    order = order[:, :words]
    gathered = emissions.gather(1, order[:, :, None].expand(-1, -1, emissions.shape[2]))
    return gathered, labels.gather(1, order).clamp(min=0), labelled.gather(1, order)


class SequenceTagger(nn.Module):
    """`encoder` -> dropout -> [BiLSTM -> dropout] -> `head` (linear over tags) -> softmax or `crf`."""

    def __init__(self, encoder: nn.Module, num_tags: int, model: str = "softmax", dropout: float = 0.1,
                 lstm_hidden: int = 128, crf_lr_mult: float = 100.0) -> None:
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"unknown tagging model {model!r}; one of {', '.join(MODELS)}")
        self.kind = model
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        width = hidden_size(encoder.config)
        self.lstm = MaskedBiLSTM(width, lstm_hidden) if model == "bert_bilstm_crf" else None
        self.head = nn.Linear(2 * lstm_hidden if self.lstm is not None else width, num_tags)
        nn.init.normal_(self.head.weight, std=getattr(encoder.config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.bias)
        self.crf = CRF(num_tags, crf_lr_mult) if model != "softmax" else None
        self.register_buffer("zero_table", torch.zeros(num_tags + 2, num_tags), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict[str, Any]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.dropout(self.encoder(**inputs).last_hidden_state)
        if self.lstm is not None:
            hidden = self.dropout(self.lstm(hidden, attention_mask))
        logits = self.head(hidden)
        if self.crf is None:
            emissions = torch.log_softmax(logits.float(), dim=-1)
            table = self.zero_table
        else:
            emissions = logits
            table = self.crf.table()
        outputs: dict[str, Any] = {
            "emissions": emissions,
            "transitions": table[None].expand(emissions.shape[0], -1, -1),
        }
        if labels is not None:
            if self.crf is None:
                outputs["loss"] = nn.functional.nll_loss(emissions.flatten(0, 1), labels.flatten(),
                                                         ignore_index=IGNORE)
            else:
                outputs["loss"] = self.crf.nll(*first_subtokens(emissions, labels))
        return outputs
