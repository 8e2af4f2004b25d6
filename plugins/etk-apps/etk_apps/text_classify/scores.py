"""Classification metrics and probabilities from logits (numpy, scikit-learn)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable, in float64."""
    import numpy as np

    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def classification_metrics(logits: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """accuracy and macro_f1; auc too for two classes when both occur in `gold`."""
    import numpy as np
    from sklearn.metrics import f1_score, roc_auc_score

    logits = np.asarray(logits)
    gold = np.asarray(gold)
    if len(gold) == 0:
        return {}
    predicted = logits.argmax(axis=-1)
    result = {
        "accuracy": float((predicted == gold).mean()),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
    }
    if logits.shape[-1] == 2 and len(np.unique(gold)) == 2:
        result["auc"] = float(roc_auc_score(gold, softmax(logits)[:, 1]))
    return result
