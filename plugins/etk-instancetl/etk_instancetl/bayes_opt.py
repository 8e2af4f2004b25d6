"""Bayesian optimisation of a black-box objective over a box, for the ``ruder_plank`` selection weights.

A scikit-learn Gaussian process (constant x Matern(nu=2.5) + white noise, ``normalize_y=True``) is fitted on the
evaluations so far; the next point is the candidate with the largest expected improvement, the candidates being
random points in the box plus small Gaussian perturbations of the best point so far. Everything random comes from one
``numpy`` Generator and the GP's ``random_state``, both seeded, so a seed fixes the whole run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

__all__ = ["expected_improvement", "maximise"]

XI = 0.01
"""Exploration margin of expected improvement."""

LOCAL_FRACTION = 0.25
"""Share of extra candidates (relative to ``candidates``) drawn around the best point so far."""

LOCAL_SCALE = 0.05
"""Standard deviation of those perturbations, as a fraction of the box width."""


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = XI) -> np.ndarray:
    """Expected improvement over ``best`` (maximisation) of Gaussian predictions; 0 where ``std`` is 0."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    improvement = mean - best - xi
    positive = std > 1e-12
    z = np.divide(improvement, std, out=np.zeros_like(improvement), where=positive)
    ei = improvement * norm.cdf(z) + std * norm.pdf(z)
    return np.where(positive, np.maximum(ei, 0.0), 0.0)


def _gp(dim: int, width: float, seed: int) -> GaussianProcessRegressor:
    """The surrogate: ConstantKernel x isotropic Matern(nu=2.5) + WhiteKernel on standardised targets."""
    matern = Matern(length_scale=0.5 * width, length_scale_bounds=(1e-2 * width, 1e2 * width), nu=2.5)
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * matern + WhiteKernel(noise_level=1e-4, noise_level_bounds=(1e-8, 1.0))
    return GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=1, random_state=seed)


def _fit_values(values: list[float]) -> np.ndarray:
    """Objective values for the GP: a non-finite one counts as the worst finite value seen (0 if none)."""
    y = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(y)
    floor = float(y[finite].min()) if finite.any() else 0.0
    return np.where(finite, y, floor)


def maximise(objective: Callable[[np.ndarray], float], dim: int, trials: int, seed: int = 0,
             initial: int = 5, bounds: tuple[float, float] = (-1.0, 1.0),
             candidates: int = 2000) -> tuple[np.ndarray, float, list[tuple[np.ndarray, float]]]:
    """Bayesian optimisation: a scikit-learn Gaussian process with expected improvement.

    Returns (best w, best value, history of (w, value) in evaluation order).

    ``trials`` counts every evaluation, the ``initial`` uniform random points included (``trials <= initial`` is
    random search; ``initial`` below 1 counts as 1, the GP needs a point). A non-finite objective value is kept in
    the history, never chosen as the best (unless all are), and enters the GP as the worst finite value seen.
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    low, high = float(bounds[0]), float(bounds[1])
    if not low < high:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    width = high - low
    rng = np.random.default_rng(seed)
    history: list[tuple[np.ndarray, float]] = []

    def evaluate(w: np.ndarray) -> None:
        history.append((w.copy(), float(objective(w.copy()))))

    for _ in range(min(max(initial, 1), trials)):
        evaluate(rng.uniform(low, high, size=dim))

    while len(history) < trials:
        x = np.stack([w for w, _ in history])
        y = _fit_values([v for _, v in history])
        best = x[int(np.argmax(y))]
        n_local = max(1, int(candidates * LOCAL_FRACTION))
        pool = np.concatenate([
            rng.uniform(low, high, size=(candidates, dim)),
            np.clip(best + rng.normal(0.0, LOCAL_SCALE * width, size=(n_local, dim)), low, high),
        ])
        # the matrices are tiny: BLAS threads only cost (several times slower on a loaded machine)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = _gp(dim, width, seed).fit(x, y)
            mean, std = gp.predict(pool, return_std=True)
        ei = expected_improvement(mean, std, float(y.max()))
        choice = int(np.argmax(ei)) if ei.max() > 0 else int(rng.integers(len(pool)))
        evaluate(pool[choice])

    values = np.array([v for _, v in history])
    finite = np.isfinite(values)
    index = int(np.argmax(np.where(finite, values, -np.inf))) if finite.any() else 0
    return history[index][0].copy(), history[index][1], history
