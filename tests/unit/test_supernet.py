"""Ops, cells and supernets: shapes, parameter counts, α bookkeeping (ALGORITHMS.md §1-2)."""

from __future__ import annotations

import pytest
import torch

from darts_engine import SPACES
from darts_engine.model.genotype import DARTS_OPS, NB201_OPS
from darts_engine.model.ops import DARTS_OPS_FACTORY, NB201_OPS_FACTORY
from darts_engine.model.spaces import DataShape
from darts_engine.model.supernet import DartsSupernet, MixedOp, NB201Supernet
from tests.helpers import cell_spaces


@pytest.mark.parametrize("name", DARTS_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_darts_op_shapes(name, stride):
    op = DARTS_OPS_FACTORY[name](8, stride, False)
    x = torch.randn(2, 8, 9, 9)  # odd size: padding and FactorizedReduce must still agree
    out = op(x)
    expected = 9 if stride == 1 else 5
    assert out.shape == (2, 8, expected, expected)


@pytest.mark.parametrize("name", NB201_OPS)
def test_nb201_op_shapes(name):
    out = NB201_OPS_FACTORY[name](6, 1, False)(torch.randn(2, 6, 8, 8))
    assert out.shape == (2, 6, 8, 8)


def test_nb201_convs_have_bias_in_search_only():
    conv = NB201_OPS_FACTORY["nor_conv_3x3"](4, 1, False)[1]
    assert conv.bias is not None
    assert NB201_OPS_FACTORY["nor_conv_3x3"](4, 1, True)[1].bias is None


def test_pools_get_bn_in_darts_mixed_op_only():
    darts = MixedOp(4, 1, DARTS_OPS, DARTS_OPS_FACTORY, pool_bn=True)
    pool = darts.ops[DARTS_OPS.index("max_pool_3x3")]
    assert isinstance(pool[1], torch.nn.BatchNorm2d) and not pool[1].affine
    nb = MixedOp(4, 1, NB201_OPS, NB201_OPS_FACTORY, pool_bn=False)
    assert isinstance(nb.ops[NB201_OPS.index("avg_pool_3x3")], torch.nn.AvgPool2d)


def test_reference_size_darts_supernet_matches_quark0_param_count():
    model = DartsSupernet(DARTS_OPS, c=16, layers=8, num_classes=10, in_channels=3)
    # quark0 prints "param size = 1.930618MB" for this network (ALGORITHMS.md §1.3)
    assert abs(model.n_weight_params() - 1_930_618) / 1_930_618 < 0.01
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_darts_reductions_and_channels():
    model = DartsSupernet(DARTS_OPS, c=16, layers=8)
    assert [c.reduction for c in model.cells] == [False, False, True, False, False, True,
                                                  False, False]
    assert len(model.cells[0].edges) == 14
    assert model.classifier.in_features == 256


def test_alphas_registered_and_kept_out_of_weights():
    model = NB201Supernet(NB201_OPS, c=4, cells_per_stage=1)
    assert model.alphas["cell"].shape == (6, 5)
    assert "alphas.cell" in model.state_dict()
    arch = {id(p) for p in model.arch_parameters()}
    assert not arch & {id(p) for p in model.weight_parameters()}
    total = sum(p.numel() for p in model.parameters())
    assert total == model.n_weight_params() + 30


def test_alpha_init_is_small_seeded_noise():
    a = NB201Supernet(NB201_OPS, alpha_generator=torch.Generator().manual_seed(3)).alphas["cell"]
    b = NB201Supernet(NB201_OPS, alpha_generator=torch.Generator().manual_seed(3)).alphas["cell"]
    assert torch.equal(a, b)
    assert 1e-4 < a.abs().mean().item() < 1e-2


@pytest.mark.parametrize("space", cell_spaces())
def test_every_space_builds_and_adapts_stem(space):
    sp = SPACES.get(space)
    model = sp.build(4, 3 if space != "nb201" else 1, DataShape(1, 8, 7), seed=0)
    out = model(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 7)
    for t in sp.cell_types:
        assert model.alphas[t].shape == (sp.n_edges, len(sp.ops))


def test_mixed_op_is_the_weighted_sum_of_its_ops():
    mixed = MixedOp(4, 1, NB201_OPS, NB201_OPS_FACTORY, pool_bn=False)
    x = torch.randn(2, 4, 6, 6)
    w = torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25])
    expected = sum(w[i] * op(x) for i, op in enumerate(mixed.ops))
    assert torch.allclose(mixed(x, w), expected)
    one_hot = torch.zeros(5)
    one_hot[NB201_OPS.index("skip_connect")] = 1.0
    assert torch.equal(mixed(x, one_hot), x)


@pytest.mark.parametrize("space", cell_spaces())
def test_every_edge_is_built_by_the_mixed_op_factory_and_a_subclass_leaves_the_fast_path(space):
    """The `mixed_op` hook (what PC-DARTS plugs into): each edge comes from the factory, with
    the space's op factory and α columns, and a MixedOp subclass is not batched unless plain."""
    calls = []

    class Tagged(MixedOp):
        pass

    def factory(c, stride, ops, op_factory, pool_bn, cols):
        calls.append((stride, tuple(ops), cols))
        return Tagged(c, stride, ops, op_factory, pool_bn, cols)

    sp = SPACES.get(space)
    cells = 1 if space == "nb201" else 3
    model = sp.build(4, cells, DataShape(1, 8, 7), seed=0, mixed_op=factory)
    edges = [e for m in model.modules() if hasattr(m, "edges") for e in m.edges]
    assert len(edges) == len(calls) > 0
    assert all(type(e) is Tagged and not e.plain for e in edges)
    plain = sp.build(4, cells, DataShape(1, 8, 7), seed=0)
    assert all(type(e) is MixedOp and e.plain
               for m in plain.modules() if hasattr(m, "edges") for e in m.edges)
    assert not any(m._fast(lambda _: True) for m in model.modules() if hasattr(m, "_fast"))
    x = torch.randn(2, 1, 8, 8)
    assert model(x).shape == plain(x).shape == (2, 7)
