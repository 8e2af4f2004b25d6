"""A BERT-family app model cut for tensor and pipeline parallelism, and put back together.

Tensor parallel (TP): in every encoder layer, the query/key/value projections (fused into one) and the
feed-forward up-projection become megatron column-parallel layers (each rank holds its heads' rows: one
input-gradient all-reduce for q, k and v together), the attention output and the
feed-forward down-projection row-parallel layers (all-reduced), the word embeddings a vocab-parallel
embedding. Each shard is a slice of the pre-trained Hugging Face weight along the parameter's partition
dimension. Everything else (position and type embeddings, LayerNorms, the pooler, the app's head) is
replicated: its inputs are the same on every TP rank, so are its gradients.

Pipeline parallel (PP): stage s keeps the layers [bounds[s], bounds[s+1]); the first stage also the
embeddings, the last the pooler and the rest of the app model (head, loss). Parameter names stay those of
the full model, which is what `gather_full_state` relies on.

Attention dropout draws the mask for all heads from the generator every TP rank shares and keeps its own
heads' part, so TP ranks do not share masks and a TP run drops what a TP=1 run drops.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from etk_core.errors import ConfigError
from etk_core.megatron import backend

SUPPORTED_TYPES = ("bert",)


class ColumnLinear(backend.ColumnParallelLinear):
    """Column-parallel linear returning only its output (as `nn.Linear` does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)[0]


class RowLinear(backend.RowParallelLinear):
    """Row-parallel linear returning only its (all-reduced, bias added) output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)[0]


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
              scaling: float, dropout: float, rank: int, heads: int) -> torch.Tensor:
    """Attention over this rank's heads ([B, h, n, d] -> [B, n, h d]); the dropout mask is this rank's slice
    of a mask drawn for all `heads`."""
    if dropout == 0.0:
        out = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    else:
        batch, local, length, _ = query.shape
        scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=-1)
        draw = torch.rand(batch, heads, length, length, dtype=probs.dtype)[:, rank * local:(rank + 1) * local]
        out = torch.matmul(probs * (draw >= dropout).to(probs.device) / (1.0 - dropout), value)
    return out.transpose(1, 2).flatten(2)


class ParallelSelfAttention(nn.Module):
    """BERT self-attention over this rank's heads, q/k/v from one column-parallel projection whose rows are
    [q heads; k heads; v heads] of this rank. Called as the Hugging Face module it replaces."""

    def __init__(self, source: Any, config: Any, rank: int, parts: int) -> None:
        super().__init__()
        self.rank, self.heads = rank, source.num_attention_heads
        self.head_size, self.scaling, self.dropout = source.attention_head_size, source.scaling, source.dropout
        hidden = source.query.in_features
        self.qkv = ColumnLinear(hidden, 3 * hidden, config=config, init_method=lambda _: None, bias=True,
                                gather_output=False)
        with torch.no_grad():
            for name, target in (("weight", self.qkv.weight), ("bias", self.qkv.bias)):
                target.copy_(torch.cat([_shard(getattr(getattr(source, part), name).data, 0, rank, parts)
                                        for part in ("query", "key", "value")]))
        backend.set_tensor_model_parallel_attributes(self.qkv.weight, True, 0, 1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: Any) -> tuple[torch.Tensor, None]:
        batch, length, _ = hidden_states.shape
        query, key, value = self.qkv(hidden_states).view(batch, length, 3, -1, self.head_size).permute(2, 0, 3, 1, 4)
        dropout = self.dropout.p if self.training else 0.0
        return attention(query, key, value, attention_mask, self.scaling, dropout, self.rank, self.heads), None


def _unfuse_qkv(name: str, pieces: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The full `query`, `key` and `value` tensors from every rank's fused `qkv` slice."""
    prefix, kind = name.rsplit(".qkv.", 1)
    parts = [piece.chunk(3, dim=0) for piece in pieces]
    return {f"{prefix}.{target}.{kind}": torch.cat([part[index] for part in parts])
            for index, target in enumerate(("query", "key", "value"))}


def check_encoder(encoder: Any, tp: int, pp: int) -> None:
    """Refuse, in one line, encoders this strategy cannot cut."""
    config = getattr(encoder, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_TYPES or not hasattr(encoder, "embeddings"):
        raise ConfigError(f"--strategy megatron cuts BERT-family encoders ({', '.join(SUPPORTED_TYPES)}); this "
                          f"model is {model_type or type(encoder).__name__}: use --strategy ddp or single")
    implementation = getattr(config, "_attn_implementation", "sdpa")
    if implementation not in ("sdpa", "eager", None):
        raise ConfigError(f"--strategy megatron needs standard attention, not {implementation!r} "
                          f"(e.g. rsa-bert); use --strategy ddp or single")
    heads, inner, layers = config.num_attention_heads, config.intermediate_size, config.num_hidden_layers
    if heads % tp or inner % tp:
        raise ConfigError(f"strategy.tp={tp} must divide the attention heads ({heads}) and the feed-forward "
                          f"width ({inner}) of {config.name_or_path or model_type}")
    if layers < pp:
        raise ConfigError(f"strategy.pp={pp} is more pipeline stages than the encoder has layers ({layers})")


def stage_bounds(layers: int, stages: int) -> list[int]:
    """Layer index where each pipeline stage starts, plus the end: as even as possible."""
    return [round(stage * layers / stages) for stage in range(stages + 1)]


def _shard(full: torch.Tensor, dim: int, rank: int, parts: int) -> torch.Tensor:
    return full.chunk(parts, dim=dim)[rank].clone()


def _parallel_linear(linear: nn.Linear, kind: str, config: Any, rank: int, parts: int) -> nn.Module:
    """A column- or row-parallel layer holding this rank's slice of `linear`'s weights."""
    def no_init(_: torch.Tensor) -> None:
        return None

    if kind == "column":
        layer = ColumnLinear(linear.in_features, linear.out_features, config=config, init_method=no_init,
                             bias=True, gather_output=False)
        bias = _shard(linear.bias.data, 0, rank, parts)
    else:
        layer = RowLinear(linear.in_features, linear.out_features, config=config, init_method=no_init, bias=True,
                          input_is_parallel=True, skip_bias_add=False)
        bias = linear.bias.data.clone()
    dim = 0 if kind == "column" else 1
    with torch.no_grad():
        layer.weight.copy_(_shard(linear.weight.data, dim, rank, parts))
        layer.bias.copy_(bias)
    # megatron marks partitioned weights only when it initialises them itself
    backend.set_tensor_model_parallel_attributes(layer.weight, True, dim, 1)
    return layer


def _parallel_embedding(embedding: nn.Embedding, config: Any, rank: int, parts: int) -> nn.Module:
    """A vocab-parallel embedding with this rank's rows (the vocabulary padded to a multiple of `parts`)."""
    vocab, width = embedding.weight.shape
    padded = -(-vocab // parts) * parts
    full = torch.zeros(padded, width, dtype=embedding.weight.dtype)
    full[:vocab] = embedding.weight.data
    layer = backend.VocabParallelEmbedding(padded, width, init_method=lambda _: None, config=config)
    with torch.no_grad():
        layer.weight.copy_(_shard(full, 0, rank, parts))
    backend.set_tensor_model_parallel_attributes(layer.weight, True, 0, 1)
    layer.etk_vocab = vocab
    return layer


class StageEncoder(nn.Module):
    """The part of a BERT encoder one pipeline stage runs; called like the Hugging Face encoder."""

    def __init__(self, encoder: Any, bounds: tuple[int, int], first: bool, last: bool) -> None:
        super().__init__()
        self.config = encoder.config
        self.first, self.last = first, last
        if first:
            self.embeddings = encoder.embeddings
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleDict({str(i): encoder.encoder.layer[i] for i in range(*bounds)})
        self.pooler = encoder.pooler if last else None
        self.input_tensor: torch.Tensor | None = None

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> Any:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if self.first:
            hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        else:  # from the previous stage, [n, B, H] as megatron's schedules send it
            hidden = self.input_tensor.transpose(0, 1)
        mask = attention_mask[:, None, None, :].bool() if attention_mask is not None else None
        for layer in self.encoder.layer.values():
            hidden = layer(hidden, attention_mask=mask)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


class PipelineStage(nn.Module):
    """What one rank trains. Last stage: the app model (its encoder cut to this stage) -> outputs with the
    loss; other stages: their part of the encoder -> hidden states [n, B, H] for the next stage."""

    share_embeddings_and_output_weights = False  # read by megatron's gradient finalisation

    def __init__(self, inner: nn.Module, last: bool) -> None:
        super().__init__()
        self.inner = inner
        self.last = last

    @property
    def part(self) -> StageEncoder:
        return self.inner.encoder

    def set_input_tensor(self, tensors: list[torch.Tensor | None]) -> None:
        """Called by megatron's schedules with what the previous stage sent."""
        self.part.input_tensor = tensors[0] if isinstance(tensors, list) else tensors

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        if self.last:
            return self.inner(**batch)
        if "input_ids" not in batch or "attention_mask" not in batch:
            raise ConfigError("strategy.pp > 1 needs an app model that encodes one token sequence per example "
                              "(text_match's model=bi encodes two); use strategy.pp=1")
        hidden = self.part(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           token_type_ids=batch.get("token_type_ids")).last_hidden_state
        return hidden.transpose(0, 1).contiguous()


def build_stage(model: nn.Module, topo: dict[str, Any]) -> PipelineStage:
    """This rank's stage of `model` (an app model whose `encoder` is a BERT-family encoder), its tensors
    sliced for this TP rank. `model` itself is left whole."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise ConfigError("--strategy megatron needs an app model built on the backbone encoder (a PLM); "
                          "classic models (textcnn, bicnn, ...) train with --strategy single or ddp")
    tp, rank, pp, stage = topo["tp"], topo["tp_rank"], topo["pp"], topo["pp_rank"]
    check_encoder(encoder, tp, pp)
    dtype = next(encoder.parameters()).dtype
    config = backend.layer_config(encoder.config, dtype)
    first, last = stage == 0, stage == pp - 1
    work = copy.deepcopy(model) if last else None
    source = work.encoder if work is not None else copy.deepcopy(encoder)
    bounds = stage_bounds(encoder.config.num_hidden_layers, pp)
    for index in range(bounds[stage], bounds[stage + 1]):
        layer = source.encoder.layer[index]
        layer.attention.self = ParallelSelfAttention(layer.attention.self, config, rank, tp)
        layer.attention.output.dense = _parallel_linear(layer.attention.output.dense, "row", config, rank, tp)
        layer.intermediate.dense = _parallel_linear(layer.intermediate.dense, "column", config, rank, tp)
        layer.output.dense = _parallel_linear(layer.output.dense, "row", config, rank, tp)
    if first:
        source.embeddings.word_embeddings = _parallel_embedding(source.embeddings.word_embeddings, config, rank, tp)
    part = StageEncoder(source, (bounds[stage], bounds[stage + 1]), first, last)
    if work is not None:
        work.encoder = part
        inner = work
    else:
        inner = nn.Module()
        inner.encoder = part
    stage_module = PipelineStage(inner, last)
    # megatron's schedules, DDP and gradient finalisation read these
    stage_module.config, stage_module.model_type = config, backend.MODEL_TYPE
    stage_module.pre_process, stage_module.post_process = first, last
    return stage_module


def local_full_state(stage: PipelineStage, topo: dict[str, Any]) -> dict[str, torch.Tensor]:
    """This stage's parameters and buffers, TP shards gathered (a collective over the TP group), under the
    full model's names (the stage keeps them: its layer ModuleDict is keyed by the layer indices)."""
    group, parts = topo["tp_group"], topo["tp"]
    state: dict[str, torch.Tensor] = {}
    params = dict(stage.inner.named_parameters())
    for name, tensor in stage.inner.state_dict().items():
        if not isinstance(tensor, torch.Tensor):  # megatron layers' `_extra_state` (None)
            continue
        param = params.get(name)
        full = tensor.detach()
        pieces = [full]
        if param is not None and getattr(param, "tensor_model_parallel", False) and parts > 1:
            pieces = [torch.empty_like(full) for _ in range(parts)]
            torch.distributed.all_gather(pieces, full.contiguous(), group=group)
        if ".qkv." in name:
            state.update({key: value.cpu() for key, value in _unfuse_qkv(name, pieces).items()})
        else:
            dim = getattr(param, "partition_dim", 0)
            state[name] = (torch.cat(pieces, dim=dim) if len(pieces) > 1 else full).cpu()
    for module_name, module in stage.inner.named_modules():
        if hasattr(module, "etk_vocab"):  # drop the vocabulary padding
            key = f"{module_name}.weight"
            state[key] = state[key][: module.etk_vocab]
    return state
