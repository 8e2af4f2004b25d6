"""Bayesian optimisation (sklearn GP + expected improvement) of the ruder_plank selection weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from etk_instancetl.bayes_opt import expected_improvement, maximise
from scipy.stats import norm

OPTIMUM = np.array([0.3, -0.5])
SEEDS = (0, 1, 2)


def bowl(w: np.ndarray) -> float:
    """A smooth 2-D function with its maximum 0 at (0.3, -0.5)."""
    return float(-np.sum((w - OPTIMUM) ** 2))


@pytest.fixture(scope="module")
def runs() -> dict[int, tuple[np.ndarray, float, list[tuple[np.ndarray, float]]]]:
    return {seed: maximise(bowl, dim=2, trials=25, seed=seed) for seed in SEEDS}


def test_history_and_best(runs):
    for best_w, best_value, history in runs.values():
        assert len(history) == 25
        points = np.stack([w for w, _ in history])
        values = np.array([v for _, v in history])
        assert points.shape == (25, 2) and ((points >= -1.0) & (points <= 1.0)).all()
        np.testing.assert_allclose(values, [bowl(w) for w in points])
        assert best_value == values.max()
        np.testing.assert_array_equal(best_w, points[values.argmax()])


def test_finds_the_maximum_and_beats_random_search(runs):
    bo, random = [], []
    for seed, (_, best_value, history) in runs.items():
        assert best_value > -0.02
        values = np.array([v for _, v in history])
        assert np.median(values[5:]) > np.median(values[:5])  # the GP-guided trials go where the values are high
        bo.append(best_value)
        points = np.random.default_rng(1000 + seed).uniform(-1.0, 1.0, size=(25, 2))
        random.append(max(bowl(w) for w in points))
    assert np.mean(bo) > np.mean(random)
    assert np.mean(bo) > -0.01


def test_deterministic_for_a_seed(runs):
    w, value, history = maximise(bowl, dim=2, trials=25, seed=0)
    w0, value0, history0 = runs[0]
    assert value == value0
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(np.stack([h for h, _ in history]), np.stack([h for h, _ in history0]))
    assert not np.array_equal(history0[0][0], runs[1][2][0][0])  # another seed, other points


def test_random_search_when_trials_within_initial():
    calls: list[np.ndarray] = []

    def objective(w: np.ndarray) -> float:
        calls.append(w)
        return bowl(w)

    w, value, history = maximise(objective, dim=2, trials=3, seed=4, initial=5, bounds=(0.0, 2.0))
    _, _, longer = maximise(bowl, dim=2, trials=5, seed=4, initial=5, bounds=(0.0, 2.0))
    assert len(calls) == len(history) == 3
    for (a, _), (b, _) in zip(history, longer[:3]):
        np.testing.assert_array_equal(a, b)  # the same uniform draws: no GP involved
    assert all(((h >= 0.0) & (h <= 2.0)).all() for h, _ in history)
    assert value == max(v for _, v in history)


def test_flat_and_non_finite_objectives_do_not_break_it():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's ConvergenceWarnings on a flat objective are silenced inside
        w, value, history = maximise(lambda w: 1.0, dim=3, trials=8, seed=0)
    assert value == 1.0 and len(history) == 8

    def sometimes_nan(w: np.ndarray) -> float:
        return float("nan") if w[0] > 0 else bowl(w)

    w, value, history = maximise(sometimes_nan, dim=2, trials=10, seed=1)
    assert np.isfinite(value) and w[0] <= 0 and len(history) == 10
    assert value == max(v for _, v in history if np.isfinite(v))


def test_expected_improvement():
    mean, std = np.array([0.0, 1.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0, 0.5])
    ei = expected_improvement(mean, std, best=0.5, xi=0.01)
    imp = mean - 0.5 - 0.01
    z = np.divide(imp, std, out=np.zeros(4), where=std > 0)
    expected = np.where(std > 0, imp * norm.cdf(z) + std * norm.pdf(z), 0.0)
    np.testing.assert_allclose(ei, expected)
    assert ei[2] == 0.0 and ei[1] > ei[0] and (ei >= 0).all()


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        maximise(bowl, dim=0, trials=5)
    with pytest.raises(ValueError):
        maximise(bowl, dim=2, trials=0)
    with pytest.raises(ValueError):
        maximise(bowl, dim=2, trials=5, bounds=(1.0, 1.0))
