"""AdaBERT's CNN "encoder" and its transformers config (model_type `etk-adabert`).

Two encoders share one config class and one embedding layer: the searchable supernet (`genotype` null: K_max
cells with every candidate operation on every edge, run with the architecture's weights) and the derived
network (`genotype` {"depth": K, "ops": [...]}: K cells, one operation per edge). An artifact's config holds
the genotype, so `encoder_from_config` rebuilds the derived network exactly.

Both take `(input_ids, attention_mask, token_type_ids=None)` and return `last_hidden_state` [batch, tokens,
hidden] like a Hugging Face encoder. A CNN's first token only sees its neighbours, so position 0 of
`last_hidden_state` carries the sequence summary instead: the max over the real tokens of the last cell's
output (a text CNN's max-over-time pooling). The app's default `pooling=cls` reads that vector; `mean`
averages the token states.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from etk_core.errors import ConfigError, EtkError
from etk_distill.adabert.cells import DerivedCell, SearchCell
from etk_distill.adabert.config import MODEL_TYPE, AdaBertConfig, register_config
from etk_distill.adabert.genotype import Genotype

register_config()


class Embeddings(nn.Module):
    """LayerNorm(word + position + token type), each table of width `hidden_size` (started from the teacher's
    tables projected onto their top principal directions, see `init_from_teacher`)."""

    def __init__(self, config: AdaBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(max(1, config.type_vocab_size), config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(float(config.hidden_dropout_prob))

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        summed = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
                  + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.norm(summed))


def principal_directions(table: torch.Tensor, count: int) -> torch.Tensor:
    """[width, count]: the top `count` principal directions of the rows of `table` (eigenvectors of their
    covariance, largest first, each signed so that its largest component is positive: deterministic)."""
    rows = table.double()
    centred = rows - rows.mean(dim=0, keepdim=True)
    values, vectors = torch.linalg.eigh(centred.T @ centred / max(1, rows.shape[0] - 1))
    top = vectors[:, torch.argsort(values, descending=True)[:count]]
    signs = torch.sign(top.gather(0, top.abs().argmax(dim=0, keepdim=True)))
    return top * torch.where(signs == 0, torch.ones_like(signs), signs)


def teacher_tables(teacher_encoder: Any) -> dict[str, torch.Tensor]:
    """The word, position and (where there is one) token-type tables of a BERT-like teacher encoder."""
    embeddings = getattr(teacher_encoder, "embeddings", None)
    found = {name: getattr(embeddings, name, None) for name in
             ("word_embeddings", "position_embeddings", "token_type_embeddings")}
    if found["word_embeddings"] is None or found["position_embeddings"] is None:
        raise ConfigError(f"--model adabert-cnn starts from the teacher's word and position embeddings; "
                          f"{type(teacher_encoder).__name__} has no `embeddings.word_embeddings` and "
                          f"`embeddings.position_embeddings` (use a BERT-like teacher, e.g. minilm-l6)")
    return {name: module.weight.detach() for name, module in found.items() if module is not None}


class _Encoder(nn.Module):
    def __init__(self, config: AdaBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings as [batch, hidden, tokens] (padding zeroed) and the mask [batch, 1, tokens]."""
        mask = attention_mask.unsqueeze(1).to(self.embeddings.norm.weight.dtype)
        return self.embeddings(input_ids, token_type_ids).transpose(1, 2) * mask, mask

    @staticmethod
    def summarise(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[batch, tokens, hidden] from a cell output [batch, hidden, tokens], position 0 replaced by the max
        over the real tokens (see the module docstring)."""
        floor = torch.finfo(states.dtype).min
        summary = states.masked_fill(mask == 0, floor).amax(dim=2, keepdim=True)
        return torch.cat([summary, states[:, :, 1:]], dim=2).transpose(1, 2)

    def init_from_teacher(self, teacher_encoder: Any) -> None:
        """Start the tables from the teacher's, projected onto the top `hidden_size` principal directions of
        its word embeddings (one projection for all three: they are summed in the teacher's space)."""
        tables = teacher_tables(teacher_encoder)
        width = tables["word_embeddings"].shape[1]
        if self.config.hidden_size > width:
            raise ConfigError(f"model.hidden_size={self.config.hidden_size} is more than the teacher's width "
                              f"{width}; the student's embeddings are the teacher's projected to fewer "
                              f"dimensions: set model.hidden_size={min(128, width)} or less")
        projection = principal_directions(tables["word_embeddings"], self.config.hidden_size)
        with torch.no_grad():
            for name, table in tables.items():
                target = getattr(self.embeddings, name).weight
                target.copy_((table.double() @ projection)[: target.shape[0]].to(target.dtype))


class SearchEncoder(_Encoder):
    """The supernet: K_max searchable cells. Trained by `--algo adabert`, which attaches its architecture
    weights; `forward` then runs the current argmax architecture."""

    def __init__(self, config: AdaBertConfig) -> None:
        super().__init__(config)
        dropout, eps = float(config.hidden_dropout_prob), config.layer_norm_eps
        self.cells = nn.ModuleList(SearchCell(config.hidden_size, config.nodes, dropout, eps)
                                   for _ in range(config.max_cells))
        self._architecture: list[Any] = []  # not a submodule: trained and checkpointed apart from the weights

    def attach(self, architecture: Any) -> None:
        """Use `architecture` (an `etk_distill.adabert.supernet.Architecture`) in `forward`."""
        self._architecture[:] = [architecture]

    @property
    def architecture(self) -> Any:
        if not self._architecture:
            raise EtkError("the adabert-cnn supernet has no architecture yet: train it with --algo adabert "
                           "(the searched, derived CNN is what the run's model/ holds)")
        return self._architecture[0]

    def cell_states(self, embedded: torch.Tensor, mask: torch.Tensor, op_weights: torch.Tensor,
                    depth: int) -> list[torch.Tensor]:
        """[c_0 (the embeddings), c_1, ..., c_depth], cell k reading c_{k-2} and c_{k-1}."""
        states = [embedded]
        before, previous = embedded, embedded
        for cell in self.cells[:depth]:
            before, previous = previous, cell(before, previous, op_weights, mask)
            states.append(previous)
        return states

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> BaseModelOutput:
        depth_weights, op_weights = self.architecture.argmax_weights()
        depth = int(depth_weights.argmax())
        embedded, mask = self.embed(input_ids, attention_mask, token_type_ids)
        states = self.cell_states(embedded, mask, op_weights.to(embedded.device), depth)
        return BaseModelOutput(last_hidden_state=self.summarise(states[-1], mask))


class DerivedEncoder(_Encoder):
    """The derived network: `genotype.depth` cells, each with the genotype's operation on every edge."""

    def __init__(self, config: AdaBertConfig) -> None:
        super().__init__(config)
        self.genotype = Genotype.from_dict(config.genotype, config.nodes, config.max_cells)
        dropout, eps = float(config.hidden_dropout_prob), config.layer_norm_eps
        self.cells = nn.ModuleList(DerivedCell(config.hidden_size, config.nodes, self.genotype.ops, dropout, eps)
                                   for _ in range(self.genotype.depth))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> BaseModelOutput:
        embedded, mask = self.embed(input_ids, attention_mask, token_type_ids)
        before, previous = embedded, embedded
        for cell in self.cells:
            before, previous = previous, cell(before, previous, mask)
        return BaseModelOutput(last_hidden_state=self.summarise(previous, mask))


def build_encoder(config: Any) -> _Encoder:
    """The supernet or the derived network that `config` describes (weights freshly initialised)."""
    if getattr(config, "model_type", None) != MODEL_TYPE:
        raise EtkError(f"an adabert-cnn artifact needs an {MODEL_TYPE!r} encoder config, not "
                       f"{getattr(config, 'model_type', None)!r}")
    return SearchEncoder(config) if config.genotype is None else DerivedEncoder(config)
