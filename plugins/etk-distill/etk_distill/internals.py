"""What a distillation loss reads inside a transformer: every layer's hidden states and its pre-softmax
attention scores, taken with forward hooks on the model's own modules while it runs.

The scores are Q·Kᵀ/√d from the outputs of the layer's own query and key projections (the values the
attention's softmax is applied to, before the padding mask), not recovered from the probabilities that
`output_attentions` returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from etk_core.errors import ConfigError

#: Names of the query and key projections inside an attention layer (BERT and its kin; MPNet).
_PROJECTIONS = (("query", "key"), ("q", "k"))


def encoder_of(model: Any) -> Any:
    """The Hugging Face encoder inside an app model (unwrapping data-parallel wrappers)."""
    model = getattr(model, "module", model)
    encoder = getattr(model, "encoder", None)
    if encoder is None or not hasattr(encoder, "config"):
        raise ConfigError(f"the student {type(model).__name__} has no transformer encoder; this algorithm "
                          f"distils layers and needs one (use kd for a classic student)")
    return encoder


def layers_of(encoder: Any) -> Any:
    """The encoder's list of transformer layers."""
    from torch import nn

    count = getattr(encoder.config, "num_hidden_layers", None)
    for module in encoder.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ConfigError(f"cannot find the {count} transformer layers of {type(encoder).__name__}")


def layer_count(model: Any) -> int:
    """How many transformer layers the model's encoder has."""
    return int(encoder_of(model).config.num_hidden_layers)


def _projections(layer: Any) -> tuple[Any, Any]:
    modules = dict(layer.named_modules())
    for query, key in _PROJECTIONS:
        found = [(name, module) for name, module in modules.items() if name.endswith(f".{query}")]
        for name, module in found:
            partner = modules.get(name[: -len(query)] + key)
            if partner is not None:
                return module, partner
    raise ConfigError(f"cannot find the query and key projections of {type(layer).__name__}; attention "
                      f"losses support BERT-like and MPNet encoders")


@dataclass
class Internals:
    """What one forward pass captured: `hidden[0]` the embeddings' output, `hidden[i]` layer i's output;
    `scores[i-1]` layer i's pre-softmax attention scores [batch, heads, tokens, tokens] (when asked for)."""

    hidden: list[Any] = field(default_factory=list)
    scores: list[Any] = field(default_factory=list)


@contextmanager
def capture(model: Any, attention: bool = False) -> Iterator[Internals]:
    """Within the block, every forward pass of `model` fills the yielded Internals (the last pass wins)."""
    encoder = encoder_of(model)
    layers = layers_of(encoder)
    heads = int(encoder.config.num_attention_heads)
    seen = Internals()
    queries: dict[int, Any] = {}
    handles = []

    def first(output: Any) -> Any:
        return output[0] if isinstance(output, tuple) else output

    def on_embeddings(module: Any, args: Any, output: Any) -> None:
        seen.hidden[:] = [first(output)]
        seen.scores.clear()

    def on_layer(module: Any, args: Any, output: Any) -> None:
        seen.hidden.append(first(output))

    def on_query(index: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            queries[index] = output
        return hook

    def on_key(index: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            query = queries.pop(index)
            batch, tokens, width = query.shape
            size = width // heads
            q = query.view(batch, tokens, heads, size).transpose(1, 2)
            k = output.view(batch, tokens, heads, size).transpose(1, 2)
            seen.scores.append(q @ k.transpose(-1, -2) * size ** -0.5)
        return hook

    embeddings = getattr(encoder, "embeddings", None)
    if embeddings is None:
        raise ConfigError(f"cannot find the embeddings of {type(encoder).__name__}")
    handles.append(embeddings.register_forward_hook(on_embeddings))
    for index, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(on_layer))
        if attention:
            query, key = _projections(layer)
            handles.append(query.register_forward_hook(on_query(index)))
            handles.append(key.register_forward_hook(on_key(index)))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()
