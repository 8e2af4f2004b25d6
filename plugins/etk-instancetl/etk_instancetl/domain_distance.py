"""How close the selected and the rejected source are to the target: the maximum mean discrepancy (MMD) between
samples of their shared representations, with one Gaussian kernel for both comparisons so they can be read
side by side (the spec's check: selected source is closer to the target than rejected source).

A task model's representation separates the labels, so a plain MMD mostly measures the label mix (a selector
that keeps more positive pairs than the target has looks far from it however target-like each pair is).
`selection_mmd` therefore compares like with like: the MMD within each label, averaged with the target's
label shares."""

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


def within_label_mmd2(x: np.ndarray, x_labels: np.ndarray, target: np.ndarray, target_labels: np.ndarray,
                      bandwidth: float) -> float | None:
    """MMD² between x and the target within each label, averaged with the target's label shares (labels with
    fewer than two examples on either side are left out and the shares renormalised); None if no label is
    left to compare."""
    terms, weights = [], []
    for label in np.unique(target_labels):
        xs, ts = x[x_labels == label], target[target_labels == label]
        if len(xs) >= 2 and len(ts) >= 2:
            terms.append(mmd2(xs, ts, bandwidth))
            weights.append(len(ts))
    return float(np.average(terms, weights=weights)) if terms else None


def selection_mmd(target: np.ndarray, target_labels: np.ndarray, selected: np.ndarray, selected_labels: np.ndarray,
                  rejected: np.ndarray, rejected_labels: np.ndarray) -> dict[str, float]:
    """MMD² within labels of the selected and of the rejected source to the target, one kernel for all (empty
    when either side has no label to compare)."""
    bandwidth = median_bandwidth(target, selected, rejected)
    near = within_label_mmd2(selected, selected_labels, target, target_labels, bandwidth)
    far = within_label_mmd2(rejected, rejected_labels, target, target_labels, bandwidth)
    return {} if near is None or far is None else {"mmd_selected": near, "mmd_rejected": far}
