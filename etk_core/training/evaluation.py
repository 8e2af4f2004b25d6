"""Batched inference over encoded features, outputs returned in input order (any backend)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from etk_core.training.batching import eval_batches

#: Runs one collated batch (tensors from `App.collate`, no labels) and returns its outputs as numpy arrays.
BatchRunner = Callable[[dict[str, Any]], dict[str, Any]]


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


def batched_outputs(app: Any, features: list[dict[str, Any]], batch_size: int,
                    run_batch: BatchRunner) -> dict[str, Any]:
    """Run length-sorted batches through `run_batch`; return each output as an array in input order."""
    per_example: dict[str, list[Any]] = {}
    positions: list[int] = []
    lengths = [app.length(feature) for feature in features]
    for indices in eval_batches(lengths, batch_size):
        batch = app.collate([features[i] for i in indices])
        batch.pop("labels", None)
        for key, value in run_batch(batch).items():
            per_example.setdefault(key, []).extend(value)
        positions.extend(indices)
    inverse = sorted(range(len(positions)), key=positions.__getitem__)
    return {key: _stack([rows[i] for i in inverse]) for key, rows in per_example.items()}


def torch_runner(model: Any, device: Any = "cpu", autocast: Any = None) -> BatchRunner:
    """A BatchRunner over a PyTorch model (eval mode, no gradients); drops the loss."""
    import contextlib

    import torch

    def run(batch: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode(), (autocast() if autocast else contextlib.nullcontext()):
            outputs = model(**move_to(batch, device))
        return {key: value.float().cpu().numpy() for key, value in outputs.items()
                if key != "loss" and value is not None}

    return run


def predict_outputs(model: Any, app: Any, features: list[dict[str, Any]], batch_size: int,
                    device: Any = "cpu", autocast: Any = None) -> dict[str, Any]:
    """Run a PyTorch `model` on `features` without labels; outputs (not the loss) in input order."""
    was_training = model.training
    model.eval()
    try:
        return batched_outputs(app, features, batch_size, torch_runner(model, device, autocast))
    finally:
        model.train(was_training)
