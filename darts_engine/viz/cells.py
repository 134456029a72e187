"""The derived cell as a Graphviz DOT graph: one cell from its kept edges, the cells of a
genotype with each kept op's weight as edge width, and LFR-DARTS' cell per stage. The cell's
shape (input nodes, rows, the DARTS concat output) comes from the space's `CellTopology`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..model.genotype import (
    CellTopology,
    Genotype,
    NB201Genotype,
    derive_genotype,
    genotype_ops,
    softmax,
)
from .palette import op_color

Normalise = Callable[[np.ndarray], np.ndarray]  # raw α -> mixing weights over the last axis


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def cell_dot(edges: Sequence[tuple[str, int, int]], *, topology: CellTopology,
             weights: Sequence[float] | None = None,
             edge_weights: Sequence[float] | None = None, title: str = "") -> str:
    """Graphviz DOT of one derived cell. edges: (op, input j, target) as genotype_ops returns;
    weights: the softmax weight of each kept op (0..1), shown as the edge's width;
    edge_weights: PC-DARTS' weight of each kept edge (0..1, softmax of β over its node's
    inputs), shown as the width instead. The tooltip names both."""
    n_nodes = max([t for _, _, t in edges], default=topology.targets[-1]) + 1
    names = {t: node_name(t, topology) for t in range(n_nodes)}
    inputs = tuple(range(topology.inputs))
    output = "c_{k}" if topology.darts_cell else None  # DARTS: the concat of the nodes
    lines = ["digraph cell {", '  rankdir=LR; bgcolor="transparent"; nodesep=0.3; ranksep=0.6;',
             ('  node [shape=box, style="rounded,filled", fillcolor="#f1f5f9", color="#94a3b8",'
              ' fontname="Helvetica", fontsize=16];'),
             '  edge [fontname="Helvetica", fontsize=15, arrowsize=0.8];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t; fontname=\"Helvetica\"; "
                     "fontsize=16;")
    for t, name in names.items():
        fill = "#dbeafe" if t in inputs else ("#fef3c7" if output is None and t == n_nodes - 1
                                              else "#f1f5f9")
        lines.append(f"  n{t} [label={_quote(name)}, fillcolor={_quote(fill)}];")
    for i, (op, j, target) in enumerate(edges):
        w = 1.0 if weights is None else float(weights[i])
        tip = op if weights is None else f"{op}: weight {w:.2f}"
        if edge_weights is not None:
            w = float(edge_weights[i])
            tip += f" · edge weight softmax(β) {w:.2f}"
        color = op_color(op)
        lines.append(f"  n{j} -> n{target} [label={_quote(op)}, tooltip={_quote(tip)}, "
                     f"color={_quote(color)}, fontcolor={_quote(color)}, "
                     f"penwidth={1 + 5 * w:.2f}];")
    if output is not None:
        lines.append(f'  out [label={_quote(output)}, fillcolor="#fef3c7"];')
        for t in sorted({t for _, _, t in edges}):
            lines.append(f'  n{t} -> out [color="#94a3b8", style=dashed, arrowsize=0.5];')
    lines.append("}")
    return "\n".join(lines)


def derive(space: str, ops: Sequence[str], alphas: Mapping[str, np.ndarray], *,
           normalise: Normalise | None = None,
           edge_weights: Mapping[str, np.ndarray] | None = None) -> Genotype:
    """The genotype of raw α (cell -> (edges, ops)) under the space's rule, the run's
    relaxation (`normalise`, default softmax) and PC-DARTS β (`edge_weights`) if any."""
    return derive_genotype(space, alphas, ops=tuple(ops), normalise=normalise,
                           edge_weights=edge_weights)


def cell_dots(genotype: Genotype, alphas: Mapping[str, np.ndarray] | None = None,
              ops: Sequence[str] = (), normalise: Normalise = softmax,
              edge_weights: Mapping[str, np.ndarray] | None = None) -> dict[str, str]:
    """DOT text per cell type of a genotype; with raw α (and the op order), edge widths show
    each kept op's mixing weight (normalise: the run's relaxation, default softmax). With
    PC-DARTS edge weights (cell -> (edges,), softmax of β per node) widths show those."""
    topology = genotype.topology
    out = {}
    for cell, edges in genotype_ops(genotype).items():
        rows = [topology.row(j, t) for _, j, t in edges]
        weights = beta = None
        if alphas is not None and cell in alphas:
            p = normalise(alphas[cell])  # (edges, ops)
            weights = [p[r, list(ops).index(op)] for r, (op, _, _) in zip(rows, edges)]
        if edge_weights is not None and cell in edge_weights:
            beta = [edge_weights[cell][r] for r in rows]
        out[cell] = cell_dot(edges, topology=topology, weights=weights, edge_weights=beta,
                             title=_cell_title(cell, topology))
    return out


def _cell_title(cell: str, topology: CellTopology) -> str:
    return f"{cell} cell" if len(topology.cell_types) > 1 else cell


def stage_cells(cells: Mapping[str, np.ndarray], ops: Sequence[str], topology: CellTopology
                ) -> list[tuple[int, str, dict[str, str]]]:
    """LFR-DARTS: the cell derived at each stage, from one epoch's stage_cells artifacts
    (cell type -> (stages, edges, ops), 0/1 mixing weights in α's layout; lfr.py).
    Returns (stage, genotype text, cell type -> DOT) per stage reached, shallow to deep; cell
    types that do not occur at a stage's depth (all-zero rows) are left out. `topology`: the
    space's; NB201's text is `|op~0|+...`, the DARTS cell's `normal=[(op, j), ...]` per type."""
    n_stages = max((w.shape[0] for w in cells.values()), default=0)
    out = []
    for k in range(n_stages):
        kept: dict[str, list[tuple[str, int, int]]] = {}
        for cell, w in cells.items():
            ends = topology.ends
            rows, cols = np.nonzero(w[k])  # one kept op per kept edge, rows ascending
            if rows.size:
                kept[cell] = [(ops[o], *ends[e]) for e, o in zip(rows, cols)]
        if not kept:
            continue
        if topology.darts_cell:
            text = ", ".join(f"{c}={[(op, j) for op, j, _ in e]!r}" for c, e in kept.items())
        else:
            edges = kept["cell"]
            text = str(NB201Genotype(tuple(tuple((op, j) for op, j, t in edges if t == target)
                                           for target in sorted({t for *_, t in edges}))))
        dots = {c: cell_dot(e, topology=topology,
                            title=f"stage {k + 1} · {_cell_title(c, topology)}")
                for c, e in kept.items()}
        out.append((k, text, dots))
    return out


def node_name(j: int, topology: CellTopology) -> str:
    """DARTS: inputs c_{k-2}, c_{k-1}, nodes 0..3; NB201: nodes 0..3."""
    if not topology.darts_cell:
        return str(j)
    return f"c_{{k-{topology.inputs - j}}}" if j < topology.inputs else str(j - topology.inputs)
