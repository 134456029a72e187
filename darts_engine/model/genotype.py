"""Genotypes: the discrete cell read off the architecture weights, printed and read back.

- DARTS rule (Liu, Simonyan & Yang 2019, §2.4; quark0/darts cnn/model_search.py
  Network.genotype): per intermediate node keep the 2 strongest incoming edges,
  strength = best non-`none` softmax weight; op = argmax excluding `none`. Optional PC-DARTS
  edge normalisation (Xu et al. 2020, §3.3; PC-DARTS model_search.py Network.genotype)
  multiplies each edge by a per-node softmax of β first.
- NAS-Bench-201 rule (AutoDL-Projects search_model_darts.py TinyNetworkDarts.genotype): per
  edge argmax over all ops, `none` included.
- Text formats: quark0's `Genotype(normal=[...], ...)` and NB201's `|op~j|+|op~j|op~j|+...`.
- `CellTopology`: a cell's graph declared once (input nodes, steps, which edges are kept, the
  headline cell, the genotype type). Every α row <-> edge (j -> target) mapping, edge label and
  choice of derivation rule is asked of it (`DARTS_CELL`, `NB201_CELL`), never re-derived.
Op lists are quark0 cnn/genotypes.py PRIMITIVES and AutoDL's NAS-Bench-201 search space
(xautodl/models/cell_operations.py NAS_BENCH_201); their order defines the α columns.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
             "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

Edge = tuple[str, int]  # (op name, input index j)
Normalise = Callable[[np.ndarray], np.ndarray]  # raw α -> mixing weights, per row


def softmax(a: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (per row), in float64; the row max is subtracted first."""
    a = np.asarray(a, dtype=np.float64)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _edges(cell: str, items: Iterable[object]) -> tuple[Edge, ...]:
    """Validated (op, j) pairs of a DARTS-format cell: 2 per node, node k takes j < k + 2."""
    edges = []
    for p, item in enumerate(items):
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], int | np.integer)):
            raise ValueError(f"{cell}[{p}] must be an (op name, input index) pair, got {item!r}")
        if not 0 <= item[1] < p // 2 + 2:
            raise ValueError(f"{cell}[{p}] = {tuple(item)!r}: node {p // 2} can only take "
                             f"inputs 0..{p // 2 + 1}")
        edges.append((item[0], int(item[1])))
    if not edges or len(edges) % 2:
        raise ValueError(f"{cell} must hold 2 (op, input) pairs per node, got {len(edges)} pairs")
    return tuple(edges)


@dataclass(frozen=True)
class DartsGenotype:
    """Two (op, input) pairs per intermediate node, in the order quark0 prints them."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:  # lists in, tuples stored: equal and hashable either way
        for cell in ("normal", "reduce"):
            edges = _edges(cell, getattr(self, cell))
            concat = tuple(getattr(self, f"{cell}_concat"))
            if not concat or not all(isinstance(c, int | np.integer)
                                     and 0 <= c < len(edges) // 2 + 2 for c in concat):
                raise ValueError(f"{cell}_concat must list state indices 0..{len(edges) // 2 + 1},"
                                 f" got {list(concat)}")
            object.__setattr__(self, cell, edges)
            object.__setattr__(self, f"{cell}_concat", tuple(int(c) for c in concat))

    def __str__(self) -> str:
        return (f"Genotype(normal={list(self.normal)!r}, normal_concat={list(self.normal_concat)!r}"
                f", reduce={list(self.reduce)!r}, reduce_concat={list(self.reduce_concat)!r})")

    def cells(self) -> dict[str, list[Edge]]:
        return {"normal": list(self.normal), "reduce": list(self.reduce)}

    @property
    def topology(self) -> CellTopology:
        return DARTS_CELL


@dataclass(frozen=True)
class NB201Genotype:
    """One op per edge; nodes[i-1] lists node i's inputs j = 0..i-1 in order."""

    nodes: tuple[tuple[Edge, ...], ...]

    def __post_init__(self) -> None:
        nodes = tuple(tuple((str(op), int(j)) for op, j in node) for node in self.nodes)
        for i, node in enumerate(nodes, start=1):
            if [j for _, j in node] != list(range(i)):
                raise ValueError(f"node {i} must take inputs 0..{i - 1} in order, "
                                 f"got {[j for _, j in node]}")
        if not nodes:
            raise ValueError("an NB201 genotype needs at least one node")
        object.__setattr__(self, "nodes", nodes)

    def __str__(self) -> str:
        return "+".join("|" + "".join(f"{op}~{j}|" for op, j in node) for node in self.nodes)

    def cells(self) -> dict[str, list[Edge]]:
        return {"cell": [edge for node in self.nodes for edge in node]}  # rows 1<-0, 2<-0, ...

    @property
    def topology(self) -> CellTopology:
        return NB201_CELL


Genotype = DartsGenotype | NB201Genotype


def _array(arrays: Mapping[str, ArrayLike], cell: str, shape: tuple[int, ...],
           what: str, masked: bool = False) -> np.ndarray:
    """`masked`: −inf allowed (an op the edge does not have, RobustDARTS S1), one finite per row."""
    if cell not in arrays:
        raise ValueError(f"{what} has no {cell!r} cell type; got {sorted(arrays)}")
    a = np.asarray(arrays[cell], dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{what}[{cell!r}] must have shape {shape}, got {a.shape}")
    finite = np.isfinite(a)
    if not (finite | np.isneginf(a) if masked else finite).all():
        raise ValueError(f"{what}[{cell!r}] contains NaN or inf values")
    if not finite.any(axis=-1).all():
        raise ValueError(f"{what}[{cell!r}] has a row of −inf only (an edge with no op)")
    return a


def _derive_top_k(topo: CellTopology, alphas: Mapping[str, ArrayLike],
                  edge_weights: Mapping[str, ArrayLike] | None, ops: tuple[str, ...],
                  normalise: Normalise) -> DartsGenotype:
    """DARTS' rule: per node the `keep` strongest inputs, strength = best non-`none` weight."""
    cells = {}
    for cell in topo.cell_types:
        raw = _array(alphas, cell, (topo.n_edges, len(ops)), "alphas", masked=True)  # (14, ops)
        w = normalise(raw)
        if edge_weights is not None:  # PC-DARTS: softmax of β over each node's incoming edges
            beta = _array(edge_weights, cell, (topo.n_edges,), "edge_weights")  # (14,)
            w *= np.concatenate([softmax(beta[a:b]) for a, b in topo.node_rows])[:, None]
        if "none" in ops:  # `none` stays in the softmax denominator but may never be chosen
            w[:, ops.index("none")] = -np.inf
        w[np.isneginf(raw)] = -np.inf  # S1: an op the edge does not have, even at weight 0
        strength, best = w.max(axis=1), w.argmax(axis=1)  # (14,), (14,); first op wins ties
        edges = []
        for a, b in topo.node_rows:
            # stable sort, as quark0's sorted(..., key=-max): equal strengths keep lower j first
            for j in sorted(range(b - a), key=lambda j: -strength[a + j])[:topo.keep]:
                edges.append((ops[best[a + j]], j))
        cells[cell] = edges
    concat = list(topo.targets)
    return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)


def _derive_argmax(topo: CellTopology, alphas: Mapping[str, ArrayLike],
                   edge_weights: Mapping[str, ArrayLike] | None, ops: tuple[str, ...],
                   normalise: Normalise) -> NB201Genotype:
    """NAS-Bench-201's rule: every edge kept, its op the argmax, `none` included."""
    (cell,) = topo.cell_types
    w = normalise(_array(alphas, cell, (topo.n_edges, len(ops)), "alphas"))  # (6, ops)
    if edge_weights is not None:  # checked only: a per-edge factor cannot move a per-edge argmax
        _array(edge_weights, cell, (topo.n_edges,), "edge_weights")
    picks = iter(ops[k] for k in w.argmax(axis=1))  # `none` included (AutoDL's genotype())
    return NB201Genotype(tuple(tuple((next(picks), j) for j in range(t)) for t in topo.targets))


@dataclass(frozen=True)
class CellTopology:
    """A searched cell's graph, declared once; the spaces, derivation and figures ask it.

    Nodes 0..inputs-1 are the cell's inputs; node t = inputs..inputs+steps-1 sums every earlier
    node, one edge (j -> t) per j < t. α rows run node by node in that order (DARTS: n0<-s0,
    n0<-s1, n1<-s0, ... = 2+3+4+5 = 14 rows; NB201: 1<-0, 2<-0, 2<-1, ... = 1+2+3 = 6 rows), as
    the supernets read them. `keep`: inputs kept per node when deriving (DARTS: 2, `none` never
    kept); None keeps every edge with its argmax op (NB201). `darts_cell`: the DARTS cell
    (two input states c_{k-2}, c_{k-1}, normal + reduction cell types, output = concat)."""

    name: str
    inputs: int
    steps: int
    cell_types: tuple[str, ...]
    headline: str                   # the cell type summarised where one is shown
    keep: int | None
    darts_cell: bool
    default_ops: tuple[str, ...]    # the op list a bare `Genotype(...)` / `|op~j|` text uses
    ends: tuple[tuple[int, int], ...] = field(init=False)   # (j, target) per α row

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", tuple((j, t) for t in self.targets for j in range(t)))

    @property
    def targets(self) -> range:
        return range(self.inputs, self.inputs + self.steps)

    @property
    def n_edges(self) -> int:
        return len(self.ends)

    def row(self, j: int, target: int) -> int:
        """α row of the edge j -> target: rows of nodes before `target`, then j."""
        if target not in self.targets or not 0 <= j < target:
            raise ValueError(f"{self.name} has no edge {j} -> {target}: targets are "
                             f"{self.targets.start}..{self.targets.stop - 1}, inputs j < target")
        return (target * (target - 1) - self.inputs * (self.inputs - 1)) // 2 + j

    @property
    def node_rows(self) -> tuple[tuple[int, int], ...]:
        """(start, stop) α rows of each node's incoming edges: DARTS (0, 2), (2, 5), ..."""
        return tuple((self.row(0, t), self.row(0, t) + t) for t in self.targets)

    def node_name(self, j: int) -> str:
        """The node's name in edge labels: DARTS s0, s1, n0..n3; NB201 0..3."""
        if not self.darts_cell:
            return str(j)
        return f"s{j}" if j < self.inputs else f"n{j - self.inputs}"

    @property
    def labels(self) -> tuple[str, ...]:
        """One label per α row: `n0<-s1` (DARTS), `2<-1` (NB201)."""
        return tuple(f"{self.node_name(t)}<-{self.node_name(j)}" for j, t in self.ends)

    def derive(self, alphas: Mapping[str, ArrayLike], ops: Sequence[str], *,
               edge_weights: Mapping[str, ArrayLike] | None = None,
               normalise: Normalise | None = None) -> Genotype:
        """The genotype of RAW α under this cell's rule (see `derive_genotype`)."""
        ops = tuple(ops)
        if len(set(ops)) != len(ops) or not set(ops) - {"none"}:
            raise ValueError(f"ops must be distinct and include an op other than 'none', "
                             f"got {ops}")
        rule = _derive_argmax if self.keep is None else _derive_top_k
        return rule(self, alphas, edge_weights, ops, normalise or softmax)

    def parse(self, text: str, ops: Collection[str] | None = None) -> Genotype:
        """`format`'s text back (ops default: `default_ops`); the text must be of this cell."""
        g = parse_genotype(text, ops=self.default_ops if ops is None else ops)
        if g.topology is not self:
            raise ValueError(f"{text[:60]!r} is a {g.topology.name} genotype, not {self.name}")
        return g

    def format(self, g: Genotype) -> str:
        return str(g)


DARTS_CELL = CellTopology("DARTS cell", inputs=2, steps=4, cell_types=("normal", "reduce"),
                          headline="normal", keep=2, darts_cell=True, default_ops=DARTS_OPS)
NB201_CELL = CellTopology("NAS-Bench-201 cell", inputs=1, steps=3, cell_types=("cell",),
                          headline="cell", keep=None, darts_cell=False, default_ops=NB201_OPS)


def derive_genotype(space: str | CellTopology, alphas: Mapping[str, ArrayLike], *,
                    edge_weights: Mapping[str, ArrayLike] | None = None,
                    ops: Sequence[str] | None = None,
                    normalise: Normalise | None = None) -> Genotype:
    """Discretise RAW α (cell type -> [edges, ops]; the relaxation is applied here). An α of
    −inf marks an op the edge does not have (RobustDARTS S1): weight 0, never chosen.

    `space`: a registered space's name (its topology gives the rule; a space with its own op
    list, e.g. RobustDARTS "s2", needs `ops`) or a `CellTopology`. `edge_weights`: raw PC-DARTS
    β (cell type -> [edges]). `normalise`: the per-edge relaxation to compare ops and edges
    under (default softmax; relaxations.py has sparsemax). Pass NumPy arrays or detached CPU
    tensors.
    """
    if isinstance(space, CellTopology):
        topo = space
    else:
        from ..registries import SPACES  # filled by model/spaces.py, which imports this module

        if space not in SPACES:
            raise ValueError(f"unknown search space {space!r}; expected one of "
                             f"{', '.join(SPACES.names())}")
        sp = SPACES.get(space)
        topo = sp.topology
        if ops is None and tuple(sp.ops) != topo.default_ops:
            raise ValueError(f"space {space!r} has its own op list: pass ops=")
    return topo.derive(alphas, topo.default_ops if ops is None else ops,
                       edge_weights=edge_weights, normalise=normalise)


_PIECE = r"\s*(\[[^\]]*\]|range\(\s*\d+\s*,\s*\d+\s*\))\s*"  # a list, or range(a, b) from logs
_DARTS_TEXT = re.compile(rf"Genotype\(\s*normal\s*={_PIECE},\s*normal_concat\s*={_PIECE},"
                         rf"\s*reduce\s*={_PIECE},\s*reduce_concat\s*={_PIECE}\)")
_NB201_EDGE = re.compile(r"(\w+)~(\d+)")


def _literal(piece: str) -> object:
    if m := re.fullmatch(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)", piece):
        return list(range(int(m[1]), int(m[2])))
    try:
        return ast.literal_eval(piece)
    except (ValueError, SyntaxError, TypeError) as e:
        raise ValueError(f"cannot read {piece!r} as a list of literals") from e


def parse_genotype(text: str, *, ops: Collection[str] | None = None) -> Genotype:
    """Read `str(genotype)` back, either format, without eval. `ops`: the allowed op names
    (default DARTS_OPS for `Genotype(...)` text, NB201_OPS for `|op~j|+...` text). Any
    space's text, a trilevel SR network's included: spaces.py `parse_any_genotype`."""
    text = text.strip()
    if m := _DARTS_TEXT.fullmatch(text):
        g: Genotype = DartsGenotype(*(_literal(piece) for piece in m.groups()))
        known = DARTS_OPS if ops is None else ops
    elif text.startswith("|"):
        nodes = []
        for i, group in enumerate(text.split("+"), start=1):
            if not (len(group) > 2 and group[0] == group[-1] == "|"):
                raise ValueError(f"node {i} of {text!r} must look like |op~0|op~1|, got {group!r}")
            edges = [_NB201_EDGE.fullmatch(e) for e in group[1:-1].split("|")]
            if not all(edges):
                raise ValueError(f"node {i} of {text!r}: each edge must be op~j, got {group!r}")
            nodes.append(tuple((e[1], int(e[2])) for e in edges))
        g = NB201Genotype(tuple(nodes))
        known = NB201_OPS if ops is None else ops
    else:
        raise ValueError(f"not a genotype: expected 'Genotype(normal=[...], normal_concat=[...], "
                         f"reduce=[...], reduce_concat=[...])' or '|op~0|+|op~0|op~1|+...', "
                         f"got {text[:80]!r}")
    for cell, edges in g.cells().items():
        if unknown := sorted({op for op, _ in edges} - set(known)):
            raise ValueError(f"unknown op(s) {unknown} in the {cell} cell; known: {list(known)}")
    return g


def genotype_ops(g: Genotype) -> dict[str, list[tuple[str, int, int]]]:
    """Cell type -> (op, input j, target) per kept edge, for drawing the cell DAG.

    Targets use the same numbering as inputs, so (j, target) is directly a DAG edge:
    DARTS 0 = s0, 1 = s1, 2..5 = intermediate nodes (as in concat); NB201 nodes 0..3.
    """
    if not isinstance(g, (DartsGenotype, NB201Genotype)):  # one choice per α row (trilevel)
        return {cell: [(op, row, row) for op, row in rows] for cell, rows in g.cells().items()}
    if isinstance(g, DartsGenotype):  # `keep` pairs per node, nodes in order
        topo = g.topology
        return {cell: [(op, j, topo.targets[p // topo.keep]) for p, (op, j) in enumerate(edges)]
                for cell, edges in g.cells().items()}
    return {"cell": [(op, j, i) for i, node in enumerate(g.nodes, start=1) for op, j in node]}


def count_ops(g: Genotype, cell: str, names: Collection[str]) -> int:
    """How many kept edges of `cell` use one of `names`, e.g. skip_connect for collapse."""
    cells = g.cells()
    if cell not in cells:
        raise ValueError(f"unknown cell type {cell!r}; this genotype has {list(cells)}")
    return sum(op in names for op, _ in cells[cell])
