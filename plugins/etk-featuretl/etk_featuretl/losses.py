"""The feature-based family's extra losses: the shared/private difference (orthogonality) loss and DRSS's
domain-relationship regulariser with its Ω update."""

from __future__ import annotations

import torch


def difference_loss(shared: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """L_diff = ||Ŝᵀ P̂||²_F / n² for one domain's batch (rows: examples). [choice] Rows are L2-normalised
    first and the sum is divided by the n² example pairs, so the loss lies in [0, 1] whatever the feature
    scale and batch size (raw PLM features would make γ·L_diff outweigh the task loss). 0 exactly when every
    shared feature column is orthogonal to every private one."""
    s = torch.nn.functional.normalize(shared.float(), dim=-1)
    p = torch.nn.functional.normalize(private.float(), dim=-1)
    return (s.T @ p).pow(2).sum() / (len(s) ** 2)


def relation_regulariser(weights: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """R = tr(Wᵀ Ω⁺ W) for the stacked task weights W (one vectorised weight matrix per row)."""
    return ((torch.linalg.pinv(omega.to(weights)) @ weights) * weights).sum()


def update_omega(weights: torch.Tensor) -> torch.Tensor:
    """Ω = (W Wᵀ)^½ / tr((W Wᵀ)^½), from the SVD W = U Σ Vᵀ (so (W Wᵀ)^½ = U Σ Uᵀ: symmetric PSD by
    construction, trace 1)."""
    u, sigma, _ = torch.linalg.svd(weights.detach().double(), full_matrices=False)
    root = (u * sigma) @ u.T
    return (root / root.trace()).float()


def correlations(omega: torch.Tensor) -> torch.Tensor:
    """Ω as a correlation matrix: Ω_ij / sqrt(Ω_ii Ω_jj) (1 on the diagonal)."""
    scale = omega.diagonal().clamp(min=1e-12).rsqrt()
    return omega * scale[:, None] * scale[None, :]
