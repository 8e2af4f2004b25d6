"""The MMD behind the selection distances: ~0 for one distribution, growing with a shift."""

from __future__ import annotations

import numpy as np
import pytest
from etk_instancetl.domain_distance import median_bandwidth, mmd2, selection_mmd, within_label_mmd2


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(300, 8))
    same, near, far = rng.normal(size=(300, 8)), rng.normal(0.3, 1.0, (300, 8)), rng.normal(1.0, 1.0, (300, 8))
    width = median_bandwidth(target, same, far)
    assert abs(mmd2(same, target, width)) < 0.01
    assert 0.01 < mmd2(near, target, width) < mmd2(far, target, width)


def test_selection_mmd_compares_within_labels():
    """Selected source shaped like the target within each label but with another label mix is close; rejected
    source with the target's label mix but shifted within a label is far (a plain MMD says the opposite)."""
    rng = np.random.default_rng(1)

    def draw(count: int, share: float, shift: float = 0.0):
        labels = (rng.random(count) < share).astype(int)
        points = rng.normal(size=(count, 4)) + 3.0 * labels[:, None] + shift * (labels == 0)[:, None]
        return points, labels

    target, selected, rejected = draw(400, 0.25), draw(400, 0.6), draw(400, 0.25, shift=0.8)
    figures = selection_mmd(*target, *selected, *rejected)
    assert figures["mmd_selected"] < 0.01 < figures["mmd_rejected"], figures
    width = median_bandwidth(target[0], selected[0], rejected[0])
    assert mmd2(selected[0], target[0], width) > mmd2(rejected[0], target[0], width)


def test_median_bandwidth_of_points_on_a_line():
    points = np.array([[0.0], [1.0], [3.0]])  # pairwise distances 1, 2, 3
    assert median_bandwidth(points) == pytest.approx(2.0)


def test_mmd_needs_two_examples_a_side():
    with pytest.raises(ValueError, match="two examples"):
        mmd2(np.zeros((1, 2)), np.zeros((5, 2)), 1.0)


def test_nothing_to_compare_without_a_shared_label():
    assert within_label_mmd2(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.ones(4), 1.0) is None
    assert selection_mmd(np.zeros((4, 2)), np.ones(4), np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)),
                         np.ones(4)) == {}
