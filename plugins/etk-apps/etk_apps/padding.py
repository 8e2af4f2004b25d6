"""Dynamic padding shared by the apps: every batch is padded to its own longest example."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def padded(features: list[dict[str, Any]], key: str, value: int, length: int | None = None) -> torch.Tensor:
    """`features[i][key]` (lists of ints) right-padded with `value` to `length` (default: the longest)."""
    import torch

    longest = length or max(len(feature[key]) for feature in features)
    return torch.tensor([feature[key] + [value] * (longest - len(feature[key])) for feature in features],
                        dtype=torch.long)


def encoder_inputs(features: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """`input_ids`, `attention_mask` and (when every feature has them) `token_type_ids`, padded."""
    batch = {"input_ids": padded(features, "input_ids", pad_id),
             "attention_mask": padded(features, "attention_mask", 0)}
    if all("token_type_ids" in feature for feature in features):
        batch["token_type_ids"] = padded(features, "token_type_ids", 0)
    return batch
