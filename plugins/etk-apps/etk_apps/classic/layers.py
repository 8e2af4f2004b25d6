"""Building blocks of the classic models: embeddings, masked conv encoders, masked pooling and softmax.

Every block takes the attention mask and gives the same result for an example whatever padding its batch
adds (padded embeddings are zeroed, padded positions never win a max or get attention weight), and uses
only ops that export to ONNX with dynamic batch and sequence axes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Fill value for masked scores: very negative, but finite in fp16 too.
NEG = -1e4


def build_embedding(vocabulary: Any, options: dict[str, Any]) -> nn.Embedding:
    """The word embedding table: random N(0, 1) (torch's default), or initialised from `app.embeddings`;
    the padding row is zero."""
    from etk_apps.classic.vectors import load_into

    table = nn.Embedding(vocabulary.size, int(options["embedding_dim"]), padding_idx=vocabulary.pad_id)
    if options.get("embeddings"):
        load_into(table.weight, options["embeddings"], vocabulary.tokens(), vocabulary.pad_id)
    table.weight.requires_grad_(not options.get("freeze_embeddings", False))
    return table


def embed(table: nn.Embedding, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) embeddings with padded positions zeroed."""
    return table(ids) * mask.unsqueeze(-1).to(table.weight.dtype)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real positions of (B, L, D) values."""
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real positions of (B, L, D) values."""
    return values.masked_fill(mask.unsqueeze(-1) == 0, NEG).max(dim=1).values


def difference(left: torch.Tensor, right: torch.Tensor, absolute: bool) -> torch.Tensor:
    """l - r as the spec has it, or |l - r| (`app.abs_difference`): the absolute difference is a similarity
    feature a linear layer can read directly (Sentence-BERT's choice); with the signed one, BiCNN learnt on
    small data memorises the training pairs instead (see the README)."""
    return (left - right).abs() if absolute else left - right


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax of `scores` along `dim`, where `mask` (broadcastable) is 0 the weight is 0."""
    return torch.softmax(scores.masked_fill(mask == 0, NEG), dim=dim)


class ConvEncoder(nn.Module):
    """Parallel 1-D convolutions (one per width) over embeddings, activation, max over time.

    `wide=False` pads width // 2 on each side, `wide=True` pads width - 1 (a wide convolution); either way
    every text, however short, has at least one output position. The max runs over the positions the text
    would have on its own (without batch padding), so batching never changes the result.
    """

    def __init__(self, dim: int, widths: tuple[int, ...], filters: int, activation: str = "relu",
                 wide: bool = False) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.paddings = tuple(w - 1 if wide else w // 2 for w in self.widths)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w, padding=p) for w, p in zip(self.widths, self.paddings))
        self.activation = torch.tanh if activation == "tanh" else torch.relu
        self.out_dim = filters * len(self.widths)

    def forward(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D), (B, L) -> (B, filters * widths)."""
        channels = embedded.transpose(1, 2)
        float_mask = mask.to(embedded.dtype).unsqueeze(1)
        pooled = []
        for conv, width, padding in zip(self.convs, self.widths, self.paddings):
            out = self.activation(conv(channels))
            # output t exists for the unpadded text iff its window ends at most `padding` past the text:
            # shifting the (right-padded) mask right by 2p - w + 1 marks exactly those positions
            valid = nn.functional.pad(float_mask, (2 * padding - width + 1, 0), value=1.0) > 0.5
            pooled.append(out.masked_fill(~valid, NEG).max(dim=-1).values)
        return torch.cat(pooled, dim=-1)
