"""The MMD behind the selection distances: ~0 for one distribution, growing with a shift."""

from __future__ import annotations

import numpy as np
import pytest
from etk_instancetl.domain_distance import median_bandwidth, mmd2, selection_mmd


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(300, 8))
    same, near, far = rng.normal(size=(300, 8)), rng.normal(0.3, 1.0, (300, 8)), rng.normal(1.0, 1.0, (300, 8))
    width = median_bandwidth(target, same, far)
    assert abs(mmd2(same, target, width)) < 0.01
    assert 0.01 < mmd2(near, target, width) < mmd2(far, target, width)
    figures = selection_mmd(target, same, far)
    assert figures["mmd_selected"] < figures["mmd_rejected"]


def test_median_bandwidth_of_points_on_a_line():
    points = np.array([[0.0], [1.0], [3.0]])  # pairwise distances 1, 2, 3
    assert median_bandwidth(points) == pytest.approx(2.0)


def test_mmd_needs_two_examples_a_side():
    with pytest.raises(ValueError, match="two examples"):
        mmd2(np.zeros((1, 2)), np.zeros((5, 2)), 1.0)
