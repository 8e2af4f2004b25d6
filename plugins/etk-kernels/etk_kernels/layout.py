"""The random block layout of Random Sparse Attention (RSA).

Per query block i (block size b, n_b = ceil(n / b) blocks), the n_b key blocks are randomly permuted and
split into k disjoint groups; head h attends to group h mod k plus the diagonal block i. So the k heads of a
group jointly cover the whole row, and each head attends to about n_b / k + 1 key blocks: O(n² / k).

The layout is stored compactly (CSR-like, with a fixed row width): an int32 tensor [heads, n_b, width] of
key-block indices, ascending within a row, padded with -1 at the end; width = ceil(n_b / k) + 1.
"""

from __future__ import annotations

import math

import torch


def layout_width(num_blocks: int, k: int) -> int:
    """Key blocks per (head, query block) row, padding included."""
    return min(num_blocks, math.ceil(num_blocks / k) + 1)


def random_layout(num_blocks: int, heads: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh random layout [heads, num_blocks, width] (int32, -1 padded, ascending per row)."""
    if k < 1:
        raise ValueError(f"the sparsity factor k must be at least 1 (got {k})")
    width = layout_width(num_blocks, k)
    layout = torch.full((heads, num_blocks, width), -1, dtype=torch.int32)
    for query in range(num_blocks):
        order = torch.randperm(num_blocks, generator=generator)
        groups = [order[g::k] for g in range(k)]  # k disjoint groups covering every key block
        for head in range(heads):
            blocks = torch.unique(torch.cat([groups[head % k], torch.tensor([query])]))  # sorted, diagonal in
            layout[head, query, : len(blocks)] = blocks.to(torch.int32)
    return layout


def dense_layout(num_blocks: int, heads: int) -> torch.Tensor:
    """Every head attends to every key block (k = 1 without randomness)."""
    row = torch.arange(num_blocks, dtype=torch.int32)
    return row.expand(heads, num_blocks, num_blocks).contiguous()


def covers_rows(layout: torch.Tensor, k: int) -> bool:
    """Whether, for every query block, the heads of each group of k heads together cover all key blocks."""
    heads, num_blocks, _ = layout.shape
    for start in range(0, heads - k + 1, k):
        for query in range(num_blocks):
            seen = layout[start:start + k, query].flatten()
            if set(seen[seen >= 0].tolist()) != set(range(num_blocks)):
                return False
    return True
