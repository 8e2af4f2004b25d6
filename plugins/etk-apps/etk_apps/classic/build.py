"""Build a classic model by name from the app's options and vocabulary."""

from __future__ import annotations

from typing import Any

from torch import nn

from etk_apps.classic.options import conv_settings


def build_classic_model(name: str, vocabulary: Any, options: dict[str, Any], num_labels: int,
                        max_length: int) -> nn.Module:
    """TextCNN (one input text), or BiCNN / HCNN / DAM / DAM+ (a pair of inputs)."""
    from etk_apps.classic.bicnn import BiCNN
    from etk_apps.classic.dam import DAM, DAMPlus
    from etk_apps.classic.hcnn import HCNN
    from etk_apps.classic.layers import build_embedding
    from etk_apps.classic.textcnn import TextCNN

    embedding = build_embedding(vocabulary, options)
    widths, filters = conv_settings(name, options)
    hidden, dropout = int(options["hidden_dim"]), float(options["classic_dropout"])
    absolute = bool(options.get("abs_difference", False))
    if name == "textcnn":
        return TextCNN(embedding, num_labels, widths, filters, dropout)
    if name == "bicnn":
        return BiCNN(embedding, num_labels, widths, filters, hidden, dropout, absolute)
    if name == "hcnn":
        return HCNN(embedding, num_labels, max_length, widths, filters, hidden, dropout, absolute)
    if name == "dam":
        return DAM(embedding, num_labels, hidden, dropout)
    if name == "dam_plus":
        return DAMPlus(embedding, num_labels, widths, filters, hidden, dropout, absolute)
    raise ValueError(f"unknown classic model {name!r}")
