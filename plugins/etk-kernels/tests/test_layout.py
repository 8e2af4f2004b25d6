"""The RSA block layout: diagonal always in, k heads of a group cover each row, compact and seeded."""

from __future__ import annotations

import pytest
import torch
from etk_kernels.layout import covers_rows, dense_layout, layout_width, random_layout


@pytest.mark.parametrize(("blocks", "heads", "k"), [(8, 12, 4), (16, 12, 2), (5, 4, 4), (3, 6, 6), (1, 2, 2)])
def test_rows_hold_the_diagonal_and_groups_cover_the_row(blocks, heads, k):
    layout = random_layout(blocks, heads, k, torch.Generator().manual_seed(1))
    assert layout.shape == (heads, blocks, layout_width(blocks, k)) and layout.dtype == torch.int32
    for head in range(heads):
        for query in range(blocks):
            row = layout[head, query]
            real = row[row >= 0]
            assert query in real.tolist()
            assert torch.equal(real, real.sort().values) and len(set(real.tolist())) == len(real)
            assert (row[len(real):] == -1).all()  # padding only at the end
    assert covers_rows(layout, k)


def test_each_head_sees_about_one_kth_of_the_row():
    layout = random_layout(64, 12, 4, torch.Generator().manual_seed(0))
    counts = (layout >= 0).sum(-1).float()
    assert counts.min() >= 16 and counts.max() <= 17  # 64 / 4 key blocks, + the diagonal unless in the group


def test_seeded_and_k1_is_dense():
    first = random_layout(10, 4, 3, torch.Generator().manual_seed(5))
    again = random_layout(10, 4, 3, torch.Generator().manual_seed(5))
    other = random_layout(10, 4, 3, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(random_layout(6, 3, 1, torch.Generator().manual_seed(0)), dense_layout(6, 3))


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        random_layout(4, 2, 0)
