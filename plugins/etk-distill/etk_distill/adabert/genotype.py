"""AdaBERT's search space in plain Python (no torch): the 10 candidate operations and their relative costs,
the edges of a cell, and the genotype (a depth and one operation per edge) with its cost and its text form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from etk_core.errors import ConfigError

#: The candidate operations of every edge, in the order of the architecture weights α_ij ∈ R^10.
OPS = ("conv3", "conv5", "conv7", "dil_conv3", "dil_conv5", "dil_conv7", "max_pool", "avg_pool", "identity",
       "zero")
#: Relative cost of each operation (the paper's normalised size + FLOPs): the convolutions cost more with
#: their kernel, pools, identity and zero the least.
COSTS = {"conv3": 0.100, "conv5": 0.104, "conv7": 0.108, "dil_conv3": 0.100, "dil_conv5": 0.104,
         "dil_conv7": 0.108, "max_pool": 0.094, "avg_pool": 0.094, "identity": 0.094, "zero": 0.094}
#: The operations with weights (the convolutions): the expensive ones.
EXPENSIVE = frozenset(name for name in OPS if "conv" in name)
#: A cell's inputs: the outputs of the two previous cells (nodes 0 and 1).
CELL_INPUTS = 2


def edges(nodes: int) -> list[tuple[int, int]]:
    """The edges (i, j) of a cell with `nodes` intermediate nodes: node j (2 .. nodes+1) sums an edge from
    every earlier node i < j (0 and 1 are the cell's two inputs)."""
    return [(i, j) for j in range(CELL_INPUTS, CELL_INPUTS + nodes) for i in range(j)]


def teacher_layer(depth: int, max_cells: int, teacher_layers: int) -> int:
    """The teacher layer whose probe the student's head at `depth` is matched to: depth·L_T/K_max rounded
    (depth 0, the embeddings, to the teacher's embeddings)."""
    return (depth * teacher_layers + max_cells // 2) // max_cells


@dataclass(frozen=True)
class Genotype:
    """A derived architecture: `depth` cells (0 .. K_max), each with operation `ops[e]` on edge e (the order
    of `edges(nodes)`, shared by every cell)."""

    depth: int
    ops: tuple[str, ...]

    @classmethod
    def from_dict(cls, value: dict[str, Any], nodes: int, max_cells: int) -> Genotype:
        """A genotype from its config form, checked against the search space."""
        try:
            depth, ops = int(value["depth"]), tuple(str(op) for op in value["ops"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"adabert genotype {value!r} is not {{'depth': N, 'ops': [...]}}") from None
        if not 0 <= depth <= max_cells:
            raise ConfigError(f"adabert genotype depth {depth} is not in 0..{max_cells}")
        unknown = [op for op in ops if op not in OPS]
        if unknown or len(ops) != len(edges(nodes)):
            raise ConfigError(f"adabert genotype ops {list(ops)} must be {len(edges(nodes))} of {', '.join(OPS)}")
        return cls(depth, ops)

    def as_dict(self) -> dict[str, Any]:
        return {"depth": self.depth, "ops": list(self.ops)}

    def cost(self, max_cells: int) -> float:
        """The efficiency loss of this architecture: (K / K_max) · the mean cost of its edges' operations."""
        return self.depth / max_cells * sum(COSTS[op] for op in self.ops) / max(1, len(self.ops))

    def expensive_share(self) -> float:
        """The share of the cell's edges that carry a convolution."""
        return sum(op in EXPENSIVE for op in self.ops) / max(1, len(self.ops))

    def describe(self, nodes: int) -> str:
        """One line: the depth and, per intermediate node, its incoming operations (zero edges left out)."""
        by_node: dict[int, list[str]] = {}
        for (i, j), op in zip(edges(nodes), self.ops, strict=True):
            if op != "zero":
                source = ("c[k-2]", "c[k-1]")[i] if i < CELL_INPUTS else f"n{i}"
                by_node.setdefault(j, []).append(f"{op}({source})")
        nodes_text = "; ".join(f"n{j} = {' + '.join(by_node.get(j, [])) or 'zero'}"
                               for j in range(CELL_INPUTS, CELL_INPUTS + nodes))
        return f"depth {self.depth}: {nodes_text}"


def argmax_genotype(edge_weights: Sequence[Sequence[float]], depth_weights: Sequence[float]) -> Genotype:
    """The argmax architecture of architecture weights (first of equal maxima)."""
    def best(values: Sequence[float]) -> int:
        values = list(values)
        return values.index(max(values))

    return Genotype(best(depth_weights), tuple(OPS[best(row)] for row in edge_weights))
