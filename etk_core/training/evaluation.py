"""Batched inference over encoded features, outputs returned in input order."""

from __future__ import annotations

from typing import Any

from etk_core.training.batching import eval_batches


def move_to(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """Move every tensor of a batch to `device`."""
    return {key: value.to(device) if hasattr(value, "to") else value for key, value in batch.items()}


def _stack(rows: list[Any]) -> Any:
    import numpy as np

    if all(row.shape == rows[0].shape for row in rows):
        return np.stack(rows)
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def predict_outputs(model: Any, app: Any, features: list[dict[str, Any]], batch_size: int,
                    device: Any = "cpu", autocast: Any = None) -> dict[str, Any]:
    """Run `model` on `features` without labels; return each output (not the loss) as an array in input order."""
    import contextlib

    import torch

    per_example: dict[str, list[Any]] = {}
    positions: list[int] = []
    lengths = [app.length(feature) for feature in features]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for indices in eval_batches(lengths, batch_size):
                batch = app.collate([features[i] for i in indices])
                batch.pop("labels", None)
                with autocast() if autocast else contextlib.nullcontext():
                    outputs = model(**move_to(batch, device))
                for key, value in outputs.items():
                    if key == "loss" or value is None:
                        continue
                    per_example.setdefault(key, []).extend(value.float().cpu().numpy())
                positions.extend(indices)
    finally:
        model.train(was_training)
    inverse = sorted(range(len(positions)), key=positions.__getitem__)
    return {key: _stack([rows[i] for i in inverse]) for key, rows in per_example.items()}
