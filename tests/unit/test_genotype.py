"""Genotype derivation (ALGORITHMS.md §1.5, §2.4, §5.2) and the two text formats, on
hand-made α whose answers are worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from darts_engine.model.genotype import (
    DARTS_OPS,
    NB201_OPS,
    DartsGenotype,
    NB201Genotype,
    count_ops,
    derive_genotype,
    genotype_ops,
    parse_genotype,
    softmax,
)

# quark0/darts cnn/genotypes.py, verbatim.
DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
NB201_EXAMPLE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                 "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")

D = {op: k for k, op in enumerate(DARTS_OPS)}  # DARTS op -> α column
N = {op: k for k, op in enumerate(NB201_OPS)}  # NB201 op -> α column
J01 = [0, 1, 0, 1, 0, 1, 0, 1]  # input indices when every node keeps its first two inputs


def darts_alphas(normal: np.ndarray | None = None) -> dict[str, np.ndarray]:
    zeros = np.zeros((14, 8))
    return {"normal": zeros if normal is None else normal, "reduce": zeros}


def test_softmax_rows_sum_to_one_and_survive_huge_logits() -> None:
    w = softmax(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]]))  # (2, 2)
    np.testing.assert_allclose(w, [[0.25, 0.75], [0.5, 0.5]])
    assert w.dtype == np.float64


def test_uniform_alphas_break_ties_by_order() -> None:
    # All 8 weights are 1/8: every non-`none` strength ties, so the stable sort keeps j = 0, 1
    # for every node and the first non-`none` op, max_pool_3x3, wins each edge.
    g = derive_genotype("darts", darts_alphas())
    assert g.normal == tuple(zip(["max_pool_3x3"] * 8, J01, strict=True))
    assert g.reduce == g.normal and g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    # NB201 keeps `none` in the argmax, and it is column 0.
    nb = derive_genotype("nb201", {"cell": np.zeros((6, 5))})
    assert str(nb) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_equal_strengths_keep_lower_input_and_first_op() -> None:
    a = np.zeros((14, 8))
    # node3 j=2 and j=4 get identical rows, each with a tie between two ops: the edges tie in
    # strength (j=2 listed first) and each edge takes the earlier op, sep_conv_5x5.
    a[[11, 13], D["sep_conv_5x5"]] = 2.0
    a[[11, 13], D["dil_conv_3x3"]] = 2.0
    assert derive_genotype("darts", darts_alphas(a)).normal[6:] == (
        ("sep_conv_5x5", 2), ("sep_conv_5x5", 4))


def test_none_strongest_is_skipped_by_darts_but_chosen_by_nb201() -> None:
    a = np.zeros((14, 8))
    a[0, D["none"]], a[0, D["sep_conv_3x3"]] = 5.0, 1.0
    # Edge j=0 takes sep_conv_3x3 (e/(e^5+e+6) beats the other 1/(e^5+e+6)) but, at 0.017,
    # now ranks below the uniform edge j=1 (1/8).
    assert derive_genotype("darts", darts_alphas(a)).normal[:2] == (
        ("max_pool_3x3", 1), ("sep_conv_3x3", 0))
    b = np.zeros((6, 5))
    b[0, N["none"]], b[0, N["nor_conv_3x3"]] = 5.0, 1.0
    b[1:, N["nor_conv_3x3"]] = 1.0
    assert str(derive_genotype("nb201", {"cell": b})) == (
        "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


def test_all_skip_alphas_collapse_to_skip() -> None:
    a = np.zeros((14, 8))
    a[:, D["skip_connect"]] = 1.0
    g = derive_genotype("darts", darts_alphas(a))
    assert g.normal == tuple(zip(["skip_connect"] * 8, J01, strict=True))
    assert count_ops(g, "normal", {"skip_connect"}) == 8
    assert count_ops(g, "reduce", {"skip_connect"}) == 0
    b = np.zeros((6, 5))
    b[:, N["skip_connect"]] = 1.0
    nb = derive_genotype("nb201", {"cell": b})
    assert str(nb) == ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
                       "+|skip_connect~0|skip_connect~1|skip_connect~2|")
    assert count_ops(nb, "cell", {"skip_connect"}) == 6


def test_hand_built_alphas() -> None:
    # One raised logit x in a row of zeros gives strength e^x / (e^x + 7), increasing in x,
    # so each node keeps its two largest x, listed strongest first.
    a = np.zeros((14, 8))
    a[0, D["sep_conv_3x3"]] = 2.0  # node0 j=0
    a[1, D["dil_conv_5x5"]] = 3.0  # node0 j=1  -> first
    a[2, D["avg_pool_3x3"]] = 1.0  # node1 j=0
    a[4, D["skip_connect"]] = 3.0  # node1 j=2  -> first; j=1 (all zero) dropped
    a[6, D["max_pool_3x3"]] = 2.5  # node2 j=1  -> first
    a[8, D["sep_conv_5x5"]] = 2.0  # node2 j=3
    a[9, D["sep_conv_3x3"]] = 0.5  # node3 j=0  -> dropped
    a[12, D["sep_conv_3x3"]] = 1.0  # node3 j=3
    a[13, D["dil_conv_3x3"]] = 4.0  # node3 j=4 -> first
    g = derive_genotype("darts", darts_alphas(a))
    assert g.normal == (
        ("dil_conv_5x5", 1), ("sep_conv_3x3", 0),
        ("skip_connect", 2), ("avg_pool_3x3", 0),
        ("max_pool_3x3", 1), ("sep_conv_5x5", 3),
        ("dil_conv_3x3", 4), ("sep_conv_3x3", 3),
    )
    assert genotype_ops(g)["normal"][2:4] == [("skip_connect", 2, 3), ("avg_pool_3x3", 0, 3)]


def test_strength_is_compared_after_the_per_edge_softmax() -> None:
    a = np.zeros((14, 8))
    a[2, D["none"]], a[2, D["sep_conv_3x3"]] = 6.0, 3.0  # node1 j=0: largest raw non-none α ...
    a[3, D["sep_conv_5x5"]] = 2.0  # j=1
    a[4, D["skip_connect"]] = 1.0  # j=2
    w = softmax(a[2:5])  # (3 edges, 8 ops)
    # ... but `none` takes the mass: e^3/(e^6+e^3+6) = 0.047 < e^2/(e^2+7) = 0.514 and
    # < e/(e+7) = 0.280, so a raw-α comparison would keep j=0 and the softmax one drops it.
    assert w[0, D["sep_conv_3x3"]] < w[2, D["skip_connect"]] < w[1, D["sep_conv_5x5"]]
    assert derive_genotype("darts", darts_alphas(a)).normal[2:4] == (
        ("sep_conv_5x5", 1), ("skip_connect", 2))


def test_edge_weights_change_which_edges_win() -> None:
    a = np.zeros((14, 8))
    a[2, D["sep_conv_3x3"]] = 2.0  # node1 j=0: 0.514
    a[3, D["sep_conv_5x5"]] = 1.5  # node1 j=1: 0.390
    a[4, D["skip_connect"]] = 1.0  # node1 j=2: 0.280
    assert derive_genotype("darts", darts_alphas(a)).normal[2:4] == (
        ("sep_conv_3x3", 0), ("sep_conv_5x5", 1))
    # β = (0, 0, 3) on node1's rows: softmax (0.045, 0.045, 0.909), products (0.023, 0.018,
    # 0.254), so j=2 now wins and j=0 comes second; the ops on the edges do not change.
    beta = np.zeros(14)
    beta[4] = 3.0
    edge_weights = {"normal": beta, "reduce": np.zeros(14)}
    g = derive_genotype("darts", darts_alphas(a), edge_weights=edge_weights)
    assert g.normal[2:4] == (("skip_connect", 2), ("sep_conv_3x3", 0))
    # Equal β within every node changes nothing.
    flat = {"normal": np.zeros(14), "reduce": np.zeros(14)}
    assert derive_genotype("darts", darts_alphas(a), edge_weights=flat) == derive_genotype(
        "darts", darts_alphas(a))


def test_reduced_space_with_own_ops() -> None:
    ops = ("skip_connect", "sep_conv_3x3")  # RobustDARTS S2: no `none`, nothing excluded
    a = np.zeros((14, 2))
    a[:, 1] = 1.0
    g = derive_genotype("s2", {"normal": a, "reduce": np.zeros((14, 2))}, ops=ops)
    assert g.normal == tuple(zip(["sep_conv_3x3"] * 8, J01, strict=True))
    assert g.reduce == tuple(zip(["skip_connect"] * 8, J01, strict=True))  # tie -> first op
    with pytest.raises(ValueError, match="pass ops="):
        derive_genotype("s2", {"normal": a, "reduce": a})


@pytest.mark.parametrize("text", [DARTS_V1, DARTS_V2])
def test_darts_reference_genotypes_round_trip(text: str) -> None:
    g = parse_genotype(text)
    assert isinstance(g, DartsGenotype)
    assert str(g) == text
    assert parse_genotype(str(g)) == g


def test_darts_v2_contents() -> None:
    g = parse_genotype(DARTS_V2)
    assert g.normal[7] == ("dil_conv_3x3", 2) and g.normal_concat == (2, 3, 4, 5)
    # §1.5: V2 has 2 skip_connect in the normal cell and V1 has 3.
    assert count_ops(g, "normal", {"skip_connect"}) == 2
    assert count_ops(parse_genotype(DARTS_V1), "normal", {"skip_connect"}) == 3
    assert set(g.cells()) == {"normal", "reduce"}
    assert genotype_ops(g)["reduce"][-2:] == [("skip_connect", 2, 5), ("max_pool_3x3", 1, 5)]


def test_range_concat_from_quark0_logs() -> None:
    logged = DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert parse_genotype(logged) == parse_genotype(DARTS_V2)


def test_lists_and_tuples_build_equal_genotypes() -> None:
    g = parse_genotype(DARTS_V2)
    assert DartsGenotype(list(g.normal), [2, 3, 4, 5], list(g.reduce), [2, 3, 4, 5]) == g
    assert hash(g) == hash(parse_genotype(DARTS_V2))


def test_nb201_round_trip() -> None:
    g = parse_genotype(NB201_EXAMPLE)
    assert isinstance(g, NB201Genotype)
    assert str(g) == NB201_EXAMPLE and parse_genotype(str(g)) == g
    assert g.cells()["cell"] == [
        ("nor_conv_3x3", 0), ("nor_conv_3x3", 0), ("avg_pool_3x3", 1),
        ("skip_connect", 0), ("nor_conv_3x3", 1), ("skip_connect", 2),
    ]
    assert genotype_ops(g)["cell"][3:] == [
        ("skip_connect", 0, 3), ("nor_conv_3x3", 1, 3), ("skip_connect", 2, 3)]
    # Derivation lands on the same genotype when each row's argmax is that op.
    b = np.zeros((6, 5))
    for row, (op, _) in enumerate(g.cells()["cell"]):
        b[row, N[op]] = 1.0
    assert derive_genotype("nb201", {"cell": b}) == g


@pytest.mark.parametrize(("space", "alphas", "message"), [
    ("darts", {"normal": np.zeros((14, 7)), "reduce": np.zeros((14, 8))},
     r"alphas\['normal'\] must have shape \(14, 8\), got \(14, 7\)"),
    ("darts", {"normal": np.zeros((14, 8))}, "no 'reduce' cell type"),
    ("nb201", {"cell": np.zeros((5, 5))}, r"must have shape \(6, 5\), got \(5, 5\)"),
    ("nb201", {"normal": np.zeros((6, 5))}, "no 'cell' cell type"),
    ("nb201", {"cell": np.full((6, 5), np.nan)}, "NaN"),
    ("darts201", {"cell": np.zeros((6, 5))}, "unknown search space 'darts201'"),
])
def test_derive_errors_name_the_problem(space: str, alphas: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        derive_genotype(space, alphas)


def test_edge_weights_shape_is_checked() -> None:
    with pytest.raises(ValueError, match=r"edge_weights\['normal'\] must have shape \(14,\)"):
        derive_genotype("darts", darts_alphas(), edge_weights={"normal": np.zeros(13)})


@pytest.mark.parametrize(("text", "message"), [
    ("hello", "not a genotype"),
    (DARTS_V2.replace("'sep_conv_3x3', 0)", "'sep_conv_9x9', 0)", 1),
     r"unknown op\(s\) \['sep_conv_9x9'\] in the normal cell"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), r"normal\[7\].*inputs 0\.\.4"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3',)"), r"normal\[7\] must be an \(op"),
    (DARTS_V2.replace(", ('dil_conv_3x3', 2)", ""), "2 \\(op, input\\) pairs per node, got 7"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "__import__('os')"), "cannot read"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~1|avg_pool_3x3~0|", r"node 2 must take inputs 0\.\.1"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3 0|avg_pool_3x3~1|", "each edge must be op~j"),
    ("|nor_conv_3x3~0|+nor_conv_3x3~0|avg_pool_3x3~1|", "node 2 .* must look like"),
    ("|conv_9x9~0|", r"unknown op\(s\) \['conv_9x9'\]"),
])
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_genotype(text)


def test_count_ops_rejects_unknown_cell() -> None:
    with pytest.raises(ValueError, match="unknown cell type 'cell'"):
        count_ops(parse_genotype(DARTS_V2), "cell", {"skip_connect"})
