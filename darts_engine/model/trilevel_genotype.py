"""Trilevel SR: the tree of candidate outputs, the topology of the three α families, the genotype.

Wu, Huang, Kumar, Sukthanker, Timofte & Van Gool 2021, "Trilevel Neural Architecture Search for
Efficient Single Image Super-Resolution" (arXiv 2101.06658), coded as in hanyao8/DA-NAS-SISR,
which is built on the first author's code (its `*_original` configs are the trilevel setting):

- network level (src/model_search_flexible.py `NAS_GAN.dfs`): after `stem_cells` fixed cells a
  tree grows by two actions, "one more cell" (up to `cells` in all) and "one more upconv" (a 3×3
  conv at LR resolution, up to `ups`). Every tree node is a candidate output feature map h_i, the
  network outputs Σ_i γ_i h_i, and each node owns its own cell / upconv module (modules are not
  shared between branches). Nodes, cells and upconvs are numbered in that DFS's pop order, so
  our indices are the reference's γ / cell / up indices. With `ups` = 0 the tree is a chain and
  the candidates are "depth_k" (k cells after conv_first).
- cell level: a cell is a chain of `ops_per_cell` mixed ops (src/genotypes.py PRIMITIVES, named
  here skip_connect, conv_3x3, residual_block, dws_block); α rows "c<cell>.<slot>".
- kernel level: the width of the feature between slot j and slot j+1 of a cell, one of `widths`
  (`NAS_GAN._build_arch_parameters` `ratio`: [cells, ops_per_cell − 1, widths]); rows "c<i>.<j>"
  = the output width of slot j.
- derivation (src/get_inherit_weight.py `main`): argmax per row of each family, the output is
  the argmax of γ and its root path (`path_generator`) is the derived network.

The engine's contract: all three families are (rows × ops) α over ONE op list, the union
cell ops + width ops + candidates; a row's foreign columns are masked (−inf in `logits()`), as
RobustDARTS S1 masks an edge's missing ops. The paper/reference setting is
`TrilevelTopology(cells=5, ops_per_cell=5, widths=(4/12, 6/12, 8/12, 10/12, 1), ups=2,
stem_cells=1, divisor=8)` with nf = 64 and ×4 (configs/config_search_original.py): 35 cells,
20 upconvs, 55 candidate outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
from numpy.typing import ArrayLike

# the reference's 'skip', 'conv3x3', 'residual', 'dwsblock', in its PRIMITIVES order
CELL_OPS = ("skip_connect", "conv_3x3", "residual_block", "dws_block")
CELL_TYPES = ("cell", "kernel", "network")

Normalise = Callable[[np.ndarray], np.ndarray]


def width_op(w: float) -> str:
    """The op name of a width multiplier: 0.5 -> 'width_0.5', 1/3 -> 'width_0.33'."""
    return f"width_{round(float(w), 2)}"


@dataclass(frozen=True)
class OutputNode:
    """One candidate output feature map of the network-level tree."""

    parent: int | None   # node index; None for the root (the output of the stem cells)
    action: str          # "cell" or "up" (how it is reached from its parent); "" for the root
    module: int          # index into the supernet's cells (or ups); -1 for the root
    depth: int           # cells from conv_first to here, stem cells included
    level: int           # upconvs on the way here


def output_tree(cells: int, ups: int, stem_cells: int) -> tuple[OutputNode, ...]:
    """The candidate outputs in the reference's DFS pop order (model_search_flexible.py
    `NAS_GAN.dfs`): popping a node creates its cell child first, then its upconv child, and
    the stack pops the upconv branch first. Stem cells are cells 0..stem_cells-1."""
    nodes: list[OutputNode] = []
    n_cells, n_ups = stem_cells, 0
    stack: list[OutputNode] = [OutputNode(None, "", -1, stem_cells, 0)]
    while stack:
        node = stack.pop()
        i = len(nodes)
        nodes.append(node)
        if node.depth < cells:
            stack.append(OutputNode(i, "cell", n_cells, node.depth + 1, node.level))
            n_cells += 1
        if node.level < ups:
            stack.append(OutputNode(i, "up", n_ups, node.depth, node.level + 1))
            n_ups += 1
    return tuple(nodes)


@dataclass(frozen=True)
class TrilevelGenotype:
    """The discrete network: each cell's op per slot, the width after every slot but the last
    (the last writes nf channels), and the chosen output (a candidate name). Every supernet cell
    is listed; the derived network runs only the cells on the output's path."""

    ops: tuple[tuple[str, ...], ...]      # (cells, ops_per_cell) op names
    widths: tuple[tuple[str, ...], ...]   # (cells, ops_per_cell − 1) width op names
    output: str

    def __post_init__(self) -> None:
        ops = tuple(tuple(str(o) for o in cell) for cell in self.ops)
        widths = tuple(tuple(str(w) for w in cell) for cell in self.widths)
        if not ops or len(widths) != len(ops):
            raise ValueError(f"a trilevel genotype needs ≥ 1 cell and one width list per cell, "
                             f"got {len(ops)} op lists and {len(widths)} width lists")
        for i, (o, w) in enumerate(zip(ops, widths)):
            if len(w) != len(o) - 1 or len(o) < 2:
                raise ValueError(f"cell {i} has {len(o)} ops and {len(w)} widths: a cell needs "
                                 f"≥ 2 ops and one width between consecutive ops")
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "widths", widths)

    def __str__(self) -> str:
        # Trilevel(output=depth_3, cells=[conv_3x3@0.5 > residual_block@1.0 > dws_block, ...])
        cells = ", ".join(
            " > ".join(f"{op}@{w.removeprefix('width_')}" for op, w in zip(o, w_)) + f" > {o[-1]}"
            for o, w_ in zip(self.ops, self.widths))
        return f"Trilevel(output={self.output}, cells=[{cells}])"

    def cells(self) -> dict[str, list[tuple[str, int]]]:
        """Cell type -> (chosen op, α row) per row, rows in the supernet's order."""
        return {"cell": [(op, r) for r, op in enumerate(o for cell in self.ops for o in cell)],
                "kernel": [(w, r) for r, w in enumerate(w for cell in self.widths for w in cell)],
                "network": [(self.output, 0)]}


_TEXT = re.compile(r"Trilevel\(\s*output\s*=\s*([\w.]+)\s*,\s*cells\s*=\s*\[(.*)\]\s*\)")
_SLOT = re.compile(r"(\w+)@([\d.]+)")


def parse_trilevel(text: str) -> TrilevelGenotype:
    """`str(genotype)` back; ops and widths are checked against a space by `TrilevelTopology`."""
    m = _TEXT.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a trilevel genotype: expected 'Trilevel(output=..., cells=[op@w > "
                         f"... > op, ...])', got {text[:80]!r}")
    ops, widths = [], []
    for i, cell in enumerate(m[2].split(",")):
        slots = [s.strip() for s in cell.split(">")]
        inner = [_SLOT.fullmatch(s) for s in slots[:-1]]
        if not all(inner) or not re.fullmatch(r"\w+", slots[-1]):
            raise ValueError(f"cell {i} of {text[:60]!r} must read 'op@width > ... > op', "
                             f"got {cell.strip()!r}")
        ops.append((*(s[1] for s in inner), slots[-1]))
        widths.append(tuple(f"width_{s[2]}" for s in inner))
    return TrilevelGenotype(tuple(ops), tuple(widths), m[1])


@dataclass(frozen=True)
class TrilevelTopology:
    """The trilevel space's rows and columns, declared once; the space, the supernet, the
    derivation and the figures ask it. Answers what the engine asks of `space.topology`
    (cell_types, headline, labels, derive, parse; darts_cell False, keep None) plus the rows
    of each family (`labels_of`, `n_edges_of`, `edge_ops`)."""

    name: str
    cells: int                       # cells on the deepest path, stem cells included
    ops_per_cell: int
    widths: tuple[float, ...]        # ascending width multipliers of the kernel level
    ups: int = 0                     # upconvs on the deepest path (the network-level tree)
    stem_cells: int = 0              # cells before the tree (not searched at network level)
    divisor: int = 4                 # channels round to multiples of it (`make_divisible`)
    cell_types: tuple[str, ...] = CELL_TYPES
    headline: str = "cell"
    keep: None = None
    darts_cell: bool = False
    nodes: tuple[OutputNode, ...] = field(init=False)

    def __post_init__(self) -> None:
        widths = tuple(float(w) for w in self.widths)
        ascending = list(widths) == sorted(set(widths))
        if not widths or not ascending or not 0 < widths[0] <= widths[-1] <= 1:
            raise ValueError(f"widths must be distinct, ascending, in (0, 1], got {self.widths}")
        if len({width_op(w) for w in widths}) != len(widths):
            raise ValueError(f"widths {widths} round to the same name at 2 decimals")
        if self.ops_per_cell < 2:
            raise ValueError(f"ops_per_cell must be >= 2 (the kernel level sits between two "
                             f"ops), got {self.ops_per_cell}")
        if self.divisor < 1:
            raise ValueError(f"divisor must be >= 1, got {self.divisor}")
        if not 0 <= self.stem_cells <= self.cells or self.cells < 1 or self.ups < 0:
            raise ValueError(f"need cells >= 1, 0 <= stem_cells <= cells, ups >= 0; got "
                             f"cells={self.cells}, stem_cells={self.stem_cells}, ups={self.ups}")
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "nodes", output_tree(self.cells, self.ups, self.stem_cells))

    # --- columns -------------------------------------------------------------------------
    @property
    def width_ops(self) -> tuple[str, ...]:
        return tuple(width_op(w) for w in self.widths)

    @property
    def candidates(self) -> tuple[str, ...]:
        """One name per tree node: 'depth_k' in a chain (ups = 0), else the path's actions,
        run-length coded from conv_first: 'path_c2u1c1' = 2 cells, 1 upconv, 1 cell."""
        if self.ups == 0:
            return tuple(f"depth_{n.depth}" for n in self.nodes)
        names = []
        for i in range(len(self.nodes)):
            seq = "c" * self.stem_cells + "".join(
                "c" if self.nodes[k].action == "cell" else "u" for k in self.path(i)[1:])
            names.append("path_" + ("".join(f"{a}{len(list(g))}" for a, g in groupby(seq))
                                    or "conv_first"))
        return tuple(names)

    @property
    def ops(self) -> tuple[str, ...]:
        """The α columns of every family: cell ops, then widths, then candidate outputs."""
        return (*CELL_OPS, *self.width_ops, *self.candidates)

    @property
    def default_ops(self) -> tuple[str, ...]:
        return self.ops

    # --- rows ----------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        """Cell modules of the supernet: the stem cells plus one per "cell" node of the tree."""
        return self.stem_cells + sum(n.action == "cell" for n in self.nodes)

    @property
    def n_ups(self) -> int:
        return sum(n.action == "up" for n in self.nodes)

    def labels_of(self, cell_type: str) -> tuple[str, ...]:
        """Row labels: 'c3.1' = cell 3, slot 1 (kernel: the width after slot 1); 'output'."""
        if cell_type == "cell":
            return tuple(f"c{i}.{j}" for i in range(self.n_cells) for j in range(self.ops_per_cell))
        if cell_type == "kernel":
            return tuple(f"c{i}.{j}" for i in range(self.n_cells)
                         for j in range(self.ops_per_cell - 1))
        if cell_type == "network":
            return ("output",)
        raise ValueError(f"unknown cell type {cell_type!r}; the trilevel space has {CELL_TYPES}")

    def n_edges_of(self, cell_type: str) -> int:
        return len(self.labels_of(cell_type))

    @property
    def labels(self) -> tuple[str, ...]:
        return self.labels_of(self.headline)

    @property
    def n_edges(self) -> int:
        return self.n_edges_of(self.headline)

    def family_ops(self, cell_type: str) -> tuple[str, ...]:
        """The columns a row of this family has (the others are masked)."""
        return {"cell": CELL_OPS, "kernel": self.width_ops,
                "network": self.candidates}[cell_type]

    @property
    def edge_ops(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Cell type -> each row's own ops, as `SearchSpace.edge_ops` (RobustDARTS S1) takes it."""
        return {t: (self.family_ops(t),) * self.n_edges_of(t) for t in self.cell_types}

    def op_mask(self, cell_type: str) -> np.ndarray:
        """(rows, ops) bool: True on the columns of the row's family."""
        own = set(self.family_ops(cell_type))
        row = np.array([op in own for op in self.ops])
        return np.tile(row, (self.n_edges_of(cell_type), 1))

    # --- the network-level tree ----------------------------------------------------------
    def path(self, node: int) -> list[int]:
        """Node indices from the root to `node` (get_inherit_weight.py `path_generator`)."""
        out = [node]
        while (parent := self.nodes[out[-1]].parent) is not None:
            out.append(parent)
        return out[::-1]

    @property
    def paths(self) -> tuple[tuple[int, ...], ...]:
        """Root-to-leaf paths that reach full depth and all upconvs (`NAS_GAN.dfs` path_index),
        the sequences the order loss runs along."""
        return tuple(tuple(self.path(i)) for i, n in enumerate(self.nodes)
                     if n.depth == self.cells and n.level == self.ups)

    def modules_of(self, output: str) -> list[tuple[str, int]]:
        """("cell" | "up", module index) from conv_first to the candidate `output`."""
        if output not in self.candidates:
            raise ValueError(f"unknown output {output!r}; candidates: {list(self.candidates)}")
        node = self.candidates.index(output)
        return [("cell", i) for i in range(self.stem_cells)] + [
            (self.nodes[k].action, self.nodes[k].module) for k in self.path(node)[1:]]

    # --- genotype ------------------------------------------------------------------------
    def _weights(self, alphas: Mapping[str, ArrayLike], cell_type: str, ops: tuple[str, ...],
                 normalise: Normalise) -> np.ndarray:
        """The family's mixing weights on its own columns, (rows, family ops), −inf elsewhere."""
        if cell_type not in alphas:
            raise ValueError(f"alphas has no {cell_type!r} cell type; got {sorted(alphas)}")
        a = np.asarray(alphas[cell_type], dtype=np.float64)
        shape = (self.n_edges_of(cell_type), len(ops))
        if a.shape != shape:
            raise ValueError(f"alphas[{cell_type!r}] must have shape {shape}, got {a.shape}")
        if np.isnan(a).any() or np.isposinf(a).any():
            raise ValueError(f"alphas[{cell_type!r}] contains NaN or +inf values")
        cols = [ops.index(o) for o in self.family_ops(cell_type)]
        own = np.isin(np.array(ops), self.family_ops(cell_type))  # (ops,) this family's columns
        raw = np.where(own[None, :], a, -np.inf)
        w = normalise(raw)
        w[np.isneginf(raw)] = -np.inf  # a foreign column is never chosen, even at weight 0
        return w[:, cols]

    def derive(self, alphas: Mapping[str, ArrayLike], ops: Sequence[str], *,
               edge_weights: Mapping[str, ArrayLike] | None = None,
               normalise: Normalise | None = None) -> TrilevelGenotype:
        """Argmax per row of each family under the run's relaxation (get_inherit_weight.py
        `main`: op_idx, ratio and path index are argmaxes); ties go to the first column.
        `edge_weights` (PC-DARTS β) have no meaning here and must be None."""
        from .genotype import softmax

        ops = tuple(ops)
        if set(ops) != set(self.ops) or len(ops) != len(self.ops):
            raise ValueError(f"ops must be this space's {len(self.ops)} columns, got {ops}")
        if edge_weights is not None:
            raise ValueError("the trilevel space has no edge weights (PC-DARTS β)")
        normalise = normalise or softmax
        pick = {t: [self.family_ops(t)[k]
                    for k in self._weights(alphas, t, ops, normalise).argmax(axis=1)]
                for t in self.cell_types}
        n, m = self.ops_per_cell, self.ops_per_cell - 1
        return TrilevelGenotype(
            tuple(tuple(pick["cell"][i * n:(i + 1) * n]) for i in range(self.n_cells)),
            tuple(tuple(pick["kernel"][i * m:(i + 1) * m]) for i in range(self.n_cells)),
            pick["network"][0])

    def parse(self, text: str, ops: Collection[str] | None = None) -> TrilevelGenotype:
        """`format`'s text back, checked against this space: cell count, ops, widths, output."""
        g = parse_trilevel(text)
        known = set(self.ops if ops is None else ops)
        if len(g.ops) != self.n_cells or any(len(o) != self.ops_per_cell for o in g.ops):
            raise ValueError(f"{self.name} has {self.n_cells} cells of {self.ops_per_cell} ops; "
                             f"the text has {[len(o) for o in g.ops]}")
        for what, names, own in (("op", {o for c in g.ops for o in c}, CELL_OPS),
                                 ("width", {w for c in g.widths for w in c}, self.width_ops),
                                 ("output", {g.output}, self.candidates)):
            if bad := sorted(names - (set(own) & known)):
                raise ValueError(f"unknown {what}(s) {bad}; known: {list(own)}")
        return g

    def format(self, g: TrilevelGenotype) -> str:
        return str(g)


# configs/config_search_original.py (num_cell 5, op_per_cell 5, num_up 2, num_cell_path_search 4,
# width_mult_list, make_divisible's divisor 8); with nf = 64 and ×4 (the PixelShuffle(4))
PAPER_TOPOLOGY = TrilevelTopology("trilevel SR (paper)", cells=5, ops_per_cell=5,
                                  widths=(4 / 12, 6 / 12, 8 / 12, 10 / 12, 1.0), ups=2,
                                  stem_cells=1, divisor=8)


def one_hot_weights(topology: TrilevelTopology, g: TrilevelGenotype) -> dict[str, np.ndarray]:
    """Mixing weights of the genotype: per family (rows, ops) with 1 on each row's choice."""
    out = {}
    for t, picks in g.cells().items():
        w = np.zeros((topology.n_edges_of(t), len(topology.ops)))
        for op, row in picks:
            w[row, topology.ops.index(op)] = 1.0
        out[t] = w
    return out
