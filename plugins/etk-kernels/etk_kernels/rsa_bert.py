"""RSA-BERT: a BERT-family backbone whose self-attention is Random Sparse Attention, weights unchanged.

`--model rsa-bert --set model.base=minilm-l6 --set model.rsa_k=4` loads the base backbone through the zoo
and registers an attention function `rsa` with transformers' attention interface; the RSA settings live in
the encoder config (`rsa_k`, `rsa_block`, `rsa_seed`), so a saved artifact rebuilds the same model. Training
draws a fresh random layout per layer and forward pass; evaluation uses a fixed layout per layer (seeded by
`rsa_seed`, the layer and the number of blocks). Attention-probability dropout is not applied (RSA never
forms the full probability matrix); hidden-state dropout is unchanged.
"""

from __future__ import annotations

from typing import Any

from etk_core.config import Option
from etk_core.errors import ConfigError
from etk_core.interfaces import Backbone

ATTENTION = "rsa"
_eval_layouts: dict[tuple[int, int, int, int, int], Any] = {}


def _key_keep(attention_mask: Any, batch: int, length: int) -> Any:
    """[B, n] bool: keys some query may attend to, from transformers' 4-D mask (bool or additive) or None."""
    import torch

    if attention_mask is None:
        return None
    mask = attention_mask
    if mask.dim() == 4:
        mask = mask[:, 0]
    if mask.dtype != torch.bool:
        mask = mask > torch.finfo(mask.dtype).min / 2
    return mask.any(dim=1) if mask.dim() == 3 else mask.reshape(batch, length)


def _layout(module: Any, heads: int, num_blocks: int) -> Any:
    import torch

    from etk_kernels.layout import random_layout

    config = module.config
    if module.training:
        return random_layout(num_blocks, heads, config.rsa_k)
    layer = module.layer_idx if module.layer_idx is not None else 0
    key = (config.rsa_seed, layer, heads, num_blocks, config.rsa_k)
    if key not in _eval_layouts:
        generator = torch.Generator().manual_seed(config.rsa_seed * 1_000_003 + layer * 7_919 + num_blocks)
        _eval_layouts[key] = random_layout(num_blocks, heads, config.rsa_k, generator)
    return _eval_layouts[key]


def rsa_attention_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                          scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """transformers attention-interface function: [B, H, n, d] inputs -> ([B, n, H, d], no weights)."""
    from etk_kernels.rsa import rsa_attention

    batch, heads, length = (int(size) for size in query.shape[:3])  # ints also while tracing for export
    block = module.config.rsa_block
    num_blocks = -(-length // block)
    keep = _key_keep(attention_mask, batch, length)
    out = rsa_attention(query, key, value, _layout(module, heads, num_blocks).to(query.device), block,
                        key_keep=keep, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def register_attention() -> None:
    """Make `rsa` a valid attention implementation name for transformers models (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, rsa_attention_forward)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def enable_rsa(encoder: Any, k: int, block: int, seed: int = 0) -> Any:
    """Switch a BERT-family encoder's self-attention to RSA in place (weights untouched)."""
    if k < 1 or block < 1:
        raise ConfigError(f"model.rsa_k and model.rsa_block must be at least 1 (got {k}, {block})")
    if not hasattr(encoder, "set_attn_implementation"):
        raise ConfigError(f"{type(encoder).__name__} cannot switch its attention; rsa-bert needs a BERT-family "
                          f"base (minilm-l6, bert-*, a local BERT folder)")
    register_attention()
    config = encoder.config
    config.rsa_k, config.rsa_block, config.rsa_seed = int(k), int(block), int(seed)
    config.etk_export_static_length = True  # the layout is fixed per length: export at app.max_length
    encoder.set_attn_implementation(ATTENTION)
    return encoder


class RsaBert(Backbone):
    """A zoo backbone with Random Sparse Attention swapped in, keeping its pre-trained weights."""

    name = "rsa-bert"
    description = "a BERT-family backbone (model.base) with Random Sparse Attention, pre-trained weights kept"
    options = {
        "base": Option(str, "minilm-l6", "the backbone whose attention becomes RSA (a BERT-family zoo name or folder)"),
        "rsa_k": Option(int, 4, "sparsity factor k: each head attends to about 1/k of the key blocks (+ diagonal)",
                        min=1),
        "rsa_block": Option(int, 64, "block size of the attention layout, in tokens", min=1),
        "rsa_seed": Option(int, 0, "seed of the fixed layout used at evaluation", min=0),
    }

    def load(self) -> tuple[Any, Any]:
        from etk_core.zoo import load_backbone

        if self.options["base"] == self.name:
            raise ConfigError("model.base cannot be rsa-bert itself; set e.g. --set model.base=minilm-l6")
        encoder, tokenizer = load_backbone({"name": self.options["base"]})
        enable_rsa(encoder, self.options["rsa_k"], self.options["rsa_block"], self.options["rsa_seed"])
        return encoder, tokenizer

    @classmethod
    def encoder_from_config(cls, config: Any) -> Any:
        from transformers import AutoModel

        register_attention()
        encoder = AutoModel.from_config(config, attn_implementation=ATTENTION)
        return enable_rsa(encoder, config.rsa_k, config.rsa_block, config.rsa_seed)
