"""Trilevel SR supernet (Wu et al. 2021; hanyao8/DA-NAS-SISR): shapes, the three α families,
order loss, FLOPs against hand counts, weight inheritance, genotype text, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darts_engine import SPACES, ConfigError
from darts_engine.model.spaces import DataShape
from darts_engine.model.trilevel import (
    SkipConnect,
    TrilevelSupernet,
    derive_network,
    expected_flops,
    flops,
    make_divisible,
    n_params,
    order_loss,
)
from darts_engine.model.trilevel_genotype import (
    CELL_OPS,
    PAPER_TOPOLOGY,
    TrilevelGenotype,
    TrilevelTopology,
    one_hot_weights,
    parse_trilevel,
)

SHAPE = DataShape(3, 8, 0)


def tiny(**kw) -> TrilevelSupernet:
    torch.manual_seed(0)
    args = dict(nf=4, cells=2, ops_per_cell=2, widths=(0.5, 1.0), scale=2, ups=0,
                stem_cells=0, divisor=2, alpha_generator=torch.Generator().manual_seed(0))
    return TrilevelSupernet(**{**args, **kw})


def torch_weights(model: TrilevelSupernet, g: TrilevelGenotype) -> dict[str, torch.Tensor]:
    return {t: torch.tensor(w, dtype=torch.float32)
            for t, w in one_hot_weights(model.topology, g).items()}


def random_genotype(topo: TrilevelTopology, rng: np.random.Generator) -> TrilevelGenotype:
    return TrilevelGenotype(
        tuple(tuple(rng.choice(CELL_OPS, topo.ops_per_cell)) for _ in range(topo.n_cells)),
        tuple(tuple(rng.choice(topo.width_ops, topo.ops_per_cell - 1))
              for _ in range(topo.n_cells)),
        str(rng.choice(topo.candidates)))


# --- shapes and the α families ---------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_in_sr_out_for_the_supernet_and_its_derived_network(scale):
    model = SPACES.get("trilevel-sr").build(8, 0, SHAPE, 0, scale=scale)
    x = torch.rand(2, 3, 5, 7)
    assert model.train()(x).shape == (2, 3, 5 * scale, 7 * scale)
    assert model.eval()(x).shape == (2, 3, 5 * scale, 7 * scale)
    g = SPACES.get("trilevel-sr").derive({t: a.detach().numpy() for t, a in model.alphas.items()})
    out = derive_network(model, g)(x)
    assert out.shape == (2, 3, 5 * scale, 7 * scale) and 0 <= out.min() and out.max() <= 1


def test_each_family_has_its_rows_and_only_its_own_columns():
    sp = SPACES.get("trilevel-sr")  # 4 cells (1 stem) of 3 ops, widths ½ ¾ 1, depth 1..4
    assert sp.ops == (*CELL_OPS, "width_0.5", "width_0.75", "width_1.0",
                      "depth_1", "depth_2", "depth_3", "depth_4")
    rows = {"cell": 4 * 3, "kernel": 4 * 2, "network": 1}
    assert {t: sp.n_edges_of(t) for t in sp.cell_types} == rows
    assert sp.edge_labels_of("cell")[:4] == ("c0.0", "c0.1", "c0.2", "c1.0")
    assert sp.edge_labels_of("kernel")[:3] == ("c0.0", "c0.1", "c1.0")
    assert sp.edge_labels_of("network") == ("output",) and sp.headline == "cell"
    model = sp.build(4, 0, SHAPE, 0)
    own = {"cell": range(0, 4), "kernel": range(4, 7), "network": range(7, 11)}
    w = model.mixing_weights()
    for t, cols in own.items():
        mask = np.zeros((rows[t], 11), dtype=bool)
        mask[:, list(cols)] = True
        np.testing.assert_array_equal(sp.op_mask(t), mask)
        np.testing.assert_array_equal(model.op_masks()[t].numpy(), mask)
        assert model.alphas[t].shape == (rows[t], 11)
        assert (w[t][:, ~mask[0]] == 0).all()            # masked: weight exactly 0
        torch.testing.assert_close(w[t].sum(-1), torch.ones(rows[t]))


def test_other_spaces_keep_one_row_count_for_every_cell_type():
    for name in ("darts", "nb201", "s1"):
        sp = SPACES.get(name)
        for t in sp.cell_types:
            assert sp.edge_labels_of(t) == sp.edge_labels and sp.n_edges_of(t) == sp.n_edges
            assert sp.op_mask(t).shape == (sp.n_edges, len(sp.ops))


def test_the_output_tree_is_the_references():
    # NAS_GAN.dfs with num_cell 5, num_cell_path_search 4, num_up 2: nodes = Σ_{a≤4, b≤2}
    # C(a+b, a) = 55, one cell module per node reached by a cell (34) + the stem, one upconv per
    # node reached by an upconv (20), 15 = C(6, 2) full paths; the DFS pops the up branch first
    topo = PAPER_TOPOLOGY
    count = sum(math.comb(a + b, a) for a in range(5) for b in range(3))
    assert len(topo.nodes) == count == 55 and len(set(topo.candidates)) == 55
    assert topo.n_cells == 35 and topo.n_ups == 20 and len(topo.paths) == math.comb(6, 2)
    assert topo.candidates[:4] == ("path_c1", "path_c1u1", "path_c1u2", "path_c1u2c1")
    # cells are numbered as their parents pop: root -> cell 1, up 0; u -> cell 2, up 1; uu -> 3
    assert topo.modules_of("path_c1u2c1") == [("cell", 0), ("up", 0), ("up", 1), ("cell", 3)]
    for p in topo.paths:
        assert topo.nodes[p[-1]].depth == 5 and topo.nodes[p[-1]].level == 2
    assert [make_divisible(64 * w, 8) for w in topo.widths] == [24, 32, 40, 56, 64]


def test_the_builder_names_the_field_to_fix():
    sp = SPACES.get("trilevel-sr")
    with pytest.raises(ConfigError, match="cells must be 4") as e:
        sp.build(4, 3, SHAPE, 0)
    assert e.value.field == "cells"
    with pytest.raises(ConfigError, match="scale must be 2, 3 or 4"):
        sp.build(4, 0, SHAPE, 0, scale=5)
    with pytest.raises(ValueError, match="ops_per_cell must be >= 2"):
        TrilevelTopology("x", cells=2, ops_per_cell=1, widths=(1.0,))


# --- widths ------------------------------------------------------------------------------------
def test_skip_is_parameter_free_and_cuts_or_pads_channels():
    skip = SkipConnect(4, 4, 16)
    x = torch.randn(1, 4, 3, 3)
    assert not list(skip.parameters())
    assert torch.equal(skip(x, 2), x[:, :2])
    padded = skip(x[:, :2], 4)
    assert torch.equal(padded[:, :2], x[:, :2]) and (padded[:, 2:] == 0).all()


def test_sampled_widths_follow_the_kernel_weights_and_the_score_is_one():
    model = tiny().train()
    p = torch.tensor([[0.7, 0.3], [0.1, 0.9]], requires_grad=True)
    counts = np.zeros((2, 2))
    torch.manual_seed(1)
    for _ in range(2000):
        idx, scores = model._kernel_choice(p)
        counts[[0, 1], idx] += 1
    torch.testing.assert_close(scores.detach(), torch.ones(2))
    np.testing.assert_allclose(counts / 2000, p.detach().numpy(), atol=0.04)
    scores.sum().backward()
    assert (p.grad != 0).all()  # straight-through: the hard sample's gradient reaches p


def test_width_modes_pick_min_max_argmax_and_restore():
    model = tiny()
    wk = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    with model.widths_as("min"):
        assert model._kernel_choice(wk) == ([0, 0], None)
    with model.widths_as("max"):
        assert model._kernel_choice(wk) == ([1, 1], None)
    assert model.width_mode is None
    assert model.eval()._kernel_choice(wk) == ([1, 0], None)
    with pytest.raises(ValueError, match="width_mode must be one of"), model.widths_as("widest"):
        pass


# --- order loss and FLOPs ----------------------------------------------------------------------
def test_order_loss_on_a_hand_made_gamma():
    g = torch.tensor([0.1, 0.5, 0.2, 0.9], requires_grad=True)
    loss = order_loss(g)  # (0.5−0.1) + (0.2−0.5) + (0.9−0.2) = 0.8 = γ_last − γ_first
    assert loss.item() == pytest.approx(0.8)
    loss.backward()
    assert g.grad.tolist() == [-1.0, 0.0, 0.0, 1.0]
    two = order_loss(g.detach(), [(0, 1, 2), (0, 3)])  # (0.5−0.1)+(0.2−0.5) + (0.9−0.1)
    assert two.item() == pytest.approx(0.9)


def test_the_models_order_loss_runs_on_raw_network_alpha_along_full_paths():
    model = tiny(cells=1, ups=1)  # nodes root, u, u·c, c, c·u: full paths 0-1-2 and 0-3-4
    assert model.topology.paths == ((0, 1, 2), (0, 3, 4))
    gamma = torch.tensor([0.3, -0.2, 1.0, 0.5, 0.25])
    with torch.no_grad():
        model.alphas["network"][0, model._cols["network"]] = gamma
    assert model.order_loss().item() == pytest.approx((1.0 - 0.3) + (0.25 - 0.3))


def test_flops_of_a_derived_network_against_a_hand_count():
    # nf 4, one cell conv_3x3 (4 -> 2) > residual_block (2 -> 4), LR 5×6 = 30 pixels
    model = tiny(cells=1)
    g = TrilevelGenotype((("conv_3x3", "residual_block"),), (("width_0.5",),), "depth_1")
    per_pixel = (4 * (3 * 9 + 1)          # conv_first 3 -> 4, 3×3, bias
                 + 2 * 4 * 9               # conv_3x3 4 -> 2
                 + 4 * 2 * 9 + 4 * 4 * 9 + 4 * 2  # residual: conv1 2->4, conv2 4->4, 1×1 skip
                 + 12 * (4 * 9 + 1))       # conv_last 4 -> 3·2², bias
    assert per_pixel == 852
    net = derive_network(model, g)
    assert flops(net, (5, 6)) == 852 * 30
    assert n_params(net) == (3 * 4 * 9 + 4) + 2 * 4 * 9 + (4 * 2 * 9 + 16 * 9 + 8) + 12 * 37


def test_flops_with_an_upconv_and_a_dws_block_against_a_hand_count():
    # ups 1: output "path_u1c1" = upconv, then cell 1: dws_block (4 -> 2) > skip (2 -> 4)
    model = tiny(cells=1, ups=1)
    assert model.topology.candidates == ("path_conv_first", "path_u1", "path_u1c1", "path_c1",
                                         "path_c1u1")
    g = TrilevelGenotype((("conv_3x3", "conv_3x3"), ("dws_block", "skip_connect")),
                         (("width_1.0",), ("width_0.5",)), "path_u1c1")
    per_pixel = (4 * 28                    # conv_first
                 + 4 * (4 * 9 + 1)         # upconv 4 -> 4, bias
                 + 16 * 4 + 16 * 9 + 2 * 16 + 2 * 4  # dws: 1×1 to 16, depthwise 3×3, 1×1, skip
                 + 0                       # skip_connect 2 -> 4: zero padding
                 + 12 * 37)                # conv_last
    assert flops(derive_network(model, g), (5, 6)) == per_pixel * 30 == 952 * 30


@pytest.mark.parametrize("kw", [{}, {"ups": 1, "stem_cells": 1, "cells": 3, "ops_per_cell": 3,
                                      "widths": (0.5, 0.75, 1.0), "nf": 8}])
def test_expected_flops_is_the_derived_flops_at_one_hot_weights(kw):
    model = tiny(**kw)
    rng = np.random.default_rng(0)
    for _ in range(4):
        g = random_genotype(model.topology, rng)
        exact = flops(derive_network(model, g), (4, 5))
        assert expected_flops(model, torch_weights(model, g), (4, 5)).item() == exact


def test_expected_flops_is_differentiable_in_every_family():
    model = tiny(ups=1)
    w = {t: v.detach().requires_grad_() for t, v in model.mixing_weights().items()}
    expected_flops(model, w, (4, 4)).backward()
    for t, v in w.items():
        assert (v.grad[:, model._cols[t]] != 0).any(), t


# --- derived network, genotype, gradients ------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"ups": 1, "stem_cells": 1, "cells": 3, "ops_per_cell": 3,
                                      "widths": (0.5, 0.75, 1.0), "nf": 8}])
def test_the_derived_network_is_the_supernet_at_one_hot_weights(kw):
    model = tiny(**kw).eval()
    with torch.no_grad():  # random weights everywhere, so every op and slice matters
        for p in model.weight_parameters():
            p.normal_(0, 0.3)
    x = torch.rand(2, 3, 6, 5)
    rng = np.random.default_rng(1)
    for _ in range(4):
        g = random_genotype(model.topology, rng)
        with torch.no_grad():
            gap = (model(x, torch_weights(model, g)) - derive_network(model, g)(x)).abs().max()
        assert gap <= 1e-5, str(g)


def test_genotype_text_round_trips_and_reads_like_the_network():
    sp = SPACES.get("trilevel-sr")
    topo = sp.topology
    g = random_genotype(topo, np.random.default_rng(2))
    text = str(g)
    assert text.startswith(f"Trilevel(output={g.output}, cells=[")
    assert f"{g.ops[0][0]}@{g.widths[0][0].removeprefix('width_')} > " in text
    assert sp.parse(text) == g and parse_trilevel(text) == g
    with pytest.raises(ValueError, match="unknown output"):
        sp.parse(text.replace(g.output, "depth_9"))
    with pytest.raises(ValueError, match="4 cells of 3 ops"):
        sp.parse(str(TrilevelGenotype(g.ops[:2], g.widths[:2], g.output)))
    with pytest.raises(ValueError, match="not a trilevel genotype"):
        sp.parse("|skip_connect~0|")


def test_space_derive_takes_the_argmax_of_each_family_never_a_masked_column():
    sp = SPACES.get("trilevel-sr")
    a = {t: np.zeros((sp.n_edges_of(t), len(sp.ops))) for t in sp.cell_types}
    for t in sp.cell_types:
        a[t][~sp.op_mask(t)] = 100.0  # foreign columns: huge, yet never chosen
    for r in range(12):
        a["cell"][r, r % 4] = 1.0
    for r in range(8):
        a["kernel"][r, 4 + (r % 3)] = 1.0
    a["network"][0, sp.ops.index("depth_3")] = 1.0
    g = sp.derive(a)
    ops = [CELL_OPS[r % 4] for r in range(12)]
    widths = [("width_0.5", "width_0.75", "width_1.0")[r % 3] for r in range(8)]
    assert g == TrilevelGenotype(tuple(tuple(ops[i:i + 3]) for i in range(0, 12, 3)),
                                 tuple(tuple(widths[i:i + 2]) for i in range(0, 8, 2)), "depth_3")
    assert sp.derive(a, relaxation="sparsemax") == g


def test_gradients_reach_every_family_and_the_weights():
    model = SPACES.get("trilevel-sr").build(4, 0, SHAPE, 0).train()
    torch.manual_seed(3)
    loss = (model(torch.rand(2, 3, 6, 6)) - 0.5).abs().mean() + 1e-2 * model.order_loss()
    loss.backward()
    for t, a in model.alphas.items():
        own = model.op_masks()[t]
        assert (a.grad[own] != 0).all(), t       # every own column of every row
        assert (a.grad[~own] == 0).all(), t      # masked columns get none
    assert all(p.grad is not None for p in model.weight_parameters())
    assert model.conv_first.weight.grad.abs().sum() > 0
    assert {id(p) for p in model.arch_parameters()} == {id(a) for a in model.alphas.values()}
