"""How close the selected and the rejected source are to the target: the maximum mean discrepancy (MMD) between
samples of their shared representations, with one Gaussian kernel for both comparisons so they can be read
side by side (the spec's check: selected source is closer to the target than rejected source)."""

from __future__ import annotations

import numpy as np


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def median_bandwidth(*samples: np.ndarray) -> float:
    """The median pairwise distance over the pooled samples (the usual heuristic for the kernel's width)."""
    pooled = np.concatenate(samples).astype(np.float64)
    sq = _squared_distances(pooled, pooled)
    upper = sq[np.triu_indices(len(pooled), k=1)]
    return float(np.sqrt(np.median(upper))) if len(upper) else 1.0


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Unbiased estimate of MMD² between samples x and y under k(a, b) = exp(-|a - b|² / (2 bandwidth²))
    (can dip just below 0 when the distributions are equal)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("MMD needs at least two examples on each side")
    scale = 2.0 * max(bandwidth, 1e-12) ** 2
    kxx = np.exp(-_squared_distances(x, x) / scale)
    kyy = np.exp(-_squared_distances(y, y) / scale)
    kxy = np.exp(-_squared_distances(x, y) / scale)
    n, m = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def selection_mmd(target: np.ndarray, selected: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """MMD² of the selected and of the rejected source to the target, one kernel for both."""
    bandwidth = median_bandwidth(target, selected, rejected)
    return {"mmd_selected": mmd2(selected, target, bandwidth), "mmd_rejected": mmd2(rejected, target, bandwidth)}
