"""Spaces own their topology (genotype.py CellTopology): α rows against an independent
enumeration of the edges, and a new DARTS-cell space that needs nothing but its declaration."""

from __future__ import annotations

import re

import numpy as np
import pytest

from darts_engine import SPACES
from darts_engine.model.genotype import (
    DARTS_CELL,
    DARTS_OPS,
    NB201_CELL,
    derive_genotype,
    genotype_ops,
)
from darts_engine.model.spaces import DataShape, discrete_weights, register_darts_cell_space
from darts_engine.viz.cells import cell_dots, stage_cells


def _enumerate_edges(inputs: int, steps: int) -> list[tuple[int, int]]:
    """(j, target) per α row, counted by hand: walk the nodes, list each one's inputs."""
    edges = []
    node = inputs
    while node < inputs + steps:
        j = 0
        while j < node:
            edges.append((j, node))
            j += 1
        node += 1
    return edges


@pytest.mark.parametrize(("topo", "n_edges", "nodes"), [
    (DARTS_CELL, 14, [(0, 2), (2, 5), (5, 9), (9, 14)]),
    (NB201_CELL, 6, [(0, 1), (1, 3), (3, 6)]),
])
def test_rows_ends_and_node_rows_match_an_enumeration(topo, n_edges, nodes):
    edges = _enumerate_edges(topo.inputs, topo.steps)
    assert len(edges) == topo.n_edges == n_edges
    assert list(topo.ends) == edges
    for row, (j, target) in enumerate(edges):
        assert topo.row(j, target) == row
    assert list(topo.node_rows) == nodes


def test_labels_are_the_supernets_and_the_spaces():
    assert DARTS_CELL.labels[:3] == ("n0<-s0", "n0<-s1", "n1<-s0")
    assert DARTS_CELL.labels[-1] == "n3<-n2"
    assert NB201_CELL.labels == ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
    for name in SPACES:
        space = SPACES.get(name)
        model = space.build(4, 0, DataShape(3, 8, 10), 0)  # each space at its default depth
        assert tuple(model.edge_labels) == space.edge_labels, name
        assert tuple(model.cell_types) == space.cell_types, name


@pytest.mark.parametrize(("j", "target"), [(2, 2), (0, 6), (0, 1), (-1, 3)])
def test_row_of_an_edge_the_cell_lacks_names_it(j, target):
    with pytest.raises(ValueError, match=f"no edge {j} -> {target}"):
        DARTS_CELL.row(j, target)


def test_the_derivation_rule_comes_from_the_topology():
    a = np.zeros((6, 5))
    a[:, 0] = 1.0  # `none` strongest everywhere: NB201's argmax keeps it
    g = derive_genotype(NB201_CELL, {"cell": a}, ops=NB201_CELL.default_ops)
    assert [op for _, _, op in [(j, t, op) for op, j, t in genotype_ops(g)["cell"]]] == \
        ["none"] * 6
    b = np.zeros((14, 8))
    b[:, 0] = 5.0  # DARTS never keeps `none`; 2 inputs per node
    d = derive_genotype(DARTS_CELL, {"normal": b, "reduce": b}, ops=DARTS_OPS)
    assert len(d.normal) == 8 and "none" not in {op for op, _ in d.normal}
    assert d.topology is DARTS_CELL and g.topology is NB201_CELL
    assert DARTS_CELL.parse(DARTS_CELL.format(d)) == d
    with pytest.raises(ValueError, match="not DARTS cell"):
        DARTS_CELL.parse(str(g))


@pytest.fixture
def new_space(monkeypatch):
    """`xcell`: a DARTS-cell space no file knows by name, registered for one test only."""
    monkeypatch.setattr(SPACES, "_items", dict(SPACES._items))
    monkeypatch.setattr(SPACES, "_help", dict(SPACES._help))
    return register_darts_cell_space("xcell", ("skip_connect", "sep_conv_3x3", "max_pool_3x3"),
                                     "a test space on the DARTS cell")


def test_a_new_darts_cell_space_derives_draws_and_counts_like_darts(new_space):
    darts = SPACES.get("darts")
    assert new_space.topology is DARTS_CELL and new_space.headline == "normal"
    assert new_space.edge_labels == darts.edge_labels and new_space.n_edges == 14
    ops = new_space.ops
    a = np.zeros((14, 3))
    a[:, ops.index("sep_conv_3x3")] = 1.0
    a[[0, 2, 5, 9], ops.index("skip_connect")] = 3.0  # first input of each node: skip, strongest
    alphas = {"normal": a, "reduce": a.copy()}
    g = new_space.derive(alphas)
    assert derive_genotype("xcell", alphas, ops=ops) == g
    # the same cell from the DARTS space, with α in its 8 op columns
    full = np.full((14, 8), -5.0)
    for k, op in enumerate(ops):
        full[:, DARTS_OPS.index(op)] = a[:, k]
    assert darts.derive({"normal": full, "reduce": full}) == g
    assert g.normal[::2] == (("skip_connect", 0),) * 4
    one_hot = discrete_weights(g, new_space)["normal"]  # (14, 3): 2 kept edges per node
    assert one_hot.shape == (14, 3) and one_hot.sum() == 8
    assert one_hot[[0, 2, 5, 9], ops.index("skip_connect")].tolist() == [1, 1, 1, 1]
    dots = cell_dots(g, alphas, ops)
    assert set(dots) == {"normal", "reduce"} and dots["normal"].count("-> out") == 4
    assert len(re.findall(r"n\d -> n\d \[label", dots["normal"])) == 8
    assert new_space.parse(str(g)) == g
    stages = stage_cells({"normal": one_hot[None]}, ops, new_space.topology)
    assert stages[0][1] == f"normal={list(g.normal)!r}"
