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
from ..model.trilevel_genotype import TrilevelGenotype, TrilevelTopology
from .palette import op_color

Normalise = Callable[[np.ndarray], np.ndarray]  # raw α -> mixing weights over the last axis


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


# Font sizes (pt) of the derived cell's drawing: large enough to read on a projector once the
# drawing is scaled to a half-page column (about 18-25 px there).
CELL_FONT = {"node": 24, "edge": 22, "title": 24}

# Streamlit's graphviz container sets `* { font-size: 0.6rem }`, and CSS beats the font-size
# attribute Graphviz writes on each SVG <text>: every label was drawn at 9.6 units whatever the
# DOT said, in boxes laid out for the DOT's size. These rules (more specific than Streamlit's)
# give each text back the size its attribute names; SVG units, so they scale with the drawing.
# The pages that draw DOT put it on the page once (st.html).
GRAPHVIZ_FONT_CSS = "<style>\n" + "\n".join(
    f'[data-testid="stGraphVizChart"] svg text[font-size="{n}.00"] {{ font-size: {n}px; }}'
    for n in range(8, 41)) + "\n</style>"


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
    # The page scales the drawing to its column's width (st.graphviz_chart fits it), so what
    # sets the labels' size on screen is the font against the layout's width. NB201's four
    # nodes in a row with an op label on each of six edges lay out ~1000 px wide left to right
    # (labels ~12 px in a half-page column); top to bottom they fit ~500 px. The DARTS cell
    # (two inputs, four nodes, the concat) reads better left to right, packed closer.
    layout = ("rankdir=LR; nodesep=0.2; ranksep=0.3;" if topology.darts_cell
              else "rankdir=TB; nodesep=0.3; ranksep=0.3;")
    lines = ["digraph cell {", f'  {layout} bgcolor="transparent";',
             ('  node [shape=box, style="rounded,filled", fillcolor="#f1f5f9", color="#94a3b8",'
              f' fontname="Helvetica", fontsize={CELL_FONT["node"]}];'),
             f'  edge [fontname="Helvetica", fontsize={CELL_FONT["edge"]}, arrowsize=0.8];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t; fontname=\"Helvetica\"; "
                     f"fontsize={CELL_FONT['title']};")
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
              edge_weights: Mapping[str, np.ndarray] | None = None,
              topology: TrilevelTopology | None = None) -> dict[str, str]:
    """DOT text per cell type of a genotype; with raw α (and the op order), edge widths show
    each kept op's mixing weight (normalise: the run's relaxation, default softmax). With
    PC-DARTS edge weights (cell -> (edges,), softmax of β per node) widths show those.
    A trilevel SR genotype is drawn as one network (`trilevel_dot`; `topology`: its space's)."""
    if isinstance(genotype, TrilevelGenotype):
        return {"network": trilevel_dot(genotype, topology)}
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


def trilevel_dot(genotype: TrilevelGenotype, topology: TrilevelTopology | None = None) -> str:
    """The derived SR network, left to right: conv_first, the cells on the chosen output's path
    (each its chain of ops with the width after each), upconvs, conv_last and the pixel
    shuffle; cells the chosen depth leaves out are drawn faint, so the network level's choice
    (how deep) reads at a glance. Op colours as in the heatmaps (skip_connect warm)."""
    n = len(genotype.ops)
    if topology is not None:
        path = topology.modules_of(genotype.output)
    elif genotype.output.startswith("depth_"):
        path = [("cell", i) for i in range(int(genotype.output.removeprefix("depth_")))]
    else:
        raise ValueError(f"drawing the output {genotype.output!r} needs the space's topology")
    used = [i for kind, i in path if kind == "cell"]
    lines = ["digraph net {", '  rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.3;',
             ('  node [shape=box, style="rounded,filled", fillcolor="#f1f5f9", color="#94a3b8",'
              ' fontname="Helvetica", fontsize=14];'),
             '  edge [color="#64748b", arrowsize=0.6];',
             f'  label={_quote("network: " + genotype.output)}; labelloc=t; fontname="Helvetica";'
             ' fontsize=16;',
             '  lr [label="LR", fillcolor="#dbeafe"]; first [label="conv_first"];']
    prev = "first"
    lines.append("  lr -> first;")
    for k, (kind, i) in enumerate(path):
        if kind == "up":
            lines.append(f'  up{k} [label="upconv {i}"]; {prev} -> up{k};')
            prev = f"up{k}"
            continue
        prev = _trilevel_cell(lines, genotype, i, prev, faint=False)
    lines.append(f'  last [label="conv_last · pixel shuffle"]; {prev} -> last;')
    lines.append('  sr [label="SR", fillcolor="#fef3c7"]; last -> sr;')
    faint_prev = None
    for i in range(n):
        if i not in used:
            faint_prev = _trilevel_cell(lines, genotype, i, faint_prev, faint=True)
    lines.append("}")
    return "\n".join(lines)


def _trilevel_cell(lines: list[str], g: TrilevelGenotype, i: int, prev: str | None,
                   faint: bool) -> str:
    """One cell as a cluster of its op chain; returns the name of its last node."""
    style = ', style="rounded,dashed", color="#cbd5e1", fontcolor="#94a3b8"' if faint else ""
    lines.append(f"  subgraph cluster_c{i} {{ label={_quote(f'cell {i}' + (' (unused)' if faint else ''))};"
                 f' fontname="Helvetica"; fontsize=13; color="#cbd5e1"; style=rounded;')
    names = []
    for j, op in enumerate(g.ops[i]):
        width = f" @{g.widths[i][j].removeprefix('width_')}" if j < len(g.widths[i]) else ""
        color = "#cbd5e1" if faint else op_color(op)
        lines.append(f"    c{i}o{j} [label={_quote(op + width)}, color={_quote(color)}, "
                     f"penwidth=2{style}];")
        names.append(f"c{i}o{j}")
    lines.append("  }")
    chain = ([prev] if prev else []) + names
    for a, b in zip(chain, chain[1:]):
        lines.append(f"  {a} -> {b}" + (' [style=dashed, color="#cbd5e1"];' if faint else ";"))
    return names[-1]


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
