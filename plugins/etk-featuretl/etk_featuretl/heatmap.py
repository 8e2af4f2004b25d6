"""A small annotated heatmap (matplotlib, no display needed) of a domain-relationship matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw_relationship(matrix: Any, names: list[str], path: Path, title: str) -> Path:
    """Write `matrix` (rows and columns named `names`, TeX-like, values in [-1, 1]) as a PNG at `path` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.2, 3.6), dpi=100)
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [f"${name}$" for name in names]  # mathtext: W_c^s draws as a subscript and a superscript
    axes.set_xticks(range(len(names)), labels)
    axes.set_yticks(range(len(names)), labels)
    for i in range(len(names)):
        for j in range(len(names)):
            axes.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", fontsize=9,
                      color="white" if abs(matrix[i][j]) > 0.6 else "black")
    axes.set_title(title, fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    plt.close(figure)
    tmp.replace(path)
    return path
