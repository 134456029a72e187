"""RobustDARTS' space S1: every edge of the DARTS cell has its own 2 ops (ALGORITHMS.md §8.1).

α has one column per op of the union of the pairs; an edge builds only its own two ops and the
other columns are masked (−inf logits: weight exactly 0, no gradient). Checked here: the pairs
against the published table, the mask under both relaxations and an Adam step, derivation,
the indicators, short searches, and the batched forward against the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from darts_engine import INDICATORS, RELAXATIONS, SPACES, parse_genotype, search
from darts_engine.methods.smoothing import random_smoothing
from darts_engine.model.genotype import genotype_ops, softmax
from darts_engine.model.ops import DARTS_OPS_FACTORY
from darts_engine.model.relaxations import get_relaxation
from darts_engine.model.spaces import DataShape
from darts_engine.model.supernet import DartsCell
from darts_engine.monitor import indicators as ind
from darts_engine.monitor import probes
from darts_engine.search import alphas_numpy
from darts_engine.viz.cells import cell_dots, derive
from tests.helpers import (
    assert_close,
    assert_same_state,
    fast_and_plain,
    loss_and_grads,
    runs_fast,
    tiny,
)

SP = SPACES.get("s1")
SHAPE = DataShape(2, 8, 5)

# automl/RobustDARTS src/spaces.py, `primitives_1`, transcribed here independently of
# spaces.py: (normal, reduce) x 14 edges, rows node by node as the DARTS cell builds them.
PUBLISHED = {
    "normal": [
        "skip_connect dil_conv_3x3", "skip_connect dil_conv_5x5", "skip_connect dil_conv_5x5",
        "skip_connect sep_conv_3x3", "skip_connect dil_conv_3x3", "max_pool_3x3 skip_connect",
        "skip_connect sep_conv_3x3", "skip_connect sep_conv_3x3", "skip_connect dil_conv_3x3",
        "skip_connect sep_conv_3x3", "max_pool_3x3 skip_connect", "skip_connect dil_conv_3x3",
        "dil_conv_3x3 dil_conv_5x5", "dil_conv_3x3 dil_conv_5x5"],
    "reduce": [
        "max_pool_3x3 avg_pool_3x3", "max_pool_3x3 dil_conv_3x3", "max_pool_3x3 avg_pool_3x3",
        "max_pool_3x3 avg_pool_3x3", "skip_connect dil_conv_5x5", "max_pool_3x3 avg_pool_3x3",
        "max_pool_3x3 sep_conv_3x3", "skip_connect dil_conv_3x3", "skip_connect dil_conv_5x5",
        "max_pool_3x3 avg_pool_3x3", "max_pool_3x3 avg_pool_3x3", "skip_connect dil_conv_5x5",
        "skip_connect dil_conv_5x5", "skip_connect dil_conv_5x5"],
}


def build(**options):
    return SP.build(4, 3, SHAPE, seed=0, **options)


def batch(n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_every_edge_builds_exactly_the_published_pair():
    assert SP.ops == ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                      "dil_conv_3x3", "dil_conv_5x5")  # the union, in DARTS' column order
    model = build()
    for cell in model.cells:
        t = "reduce" if cell.reduction else "normal"
        assert len(cell.edges) == len(PUBLISHED[t]) == SP.n_edges
        for row, (edge, pair) in enumerate(zip(cell.edges, PUBLISHED[t])):
            names = [SP.ops[c] for c in edge.cols]
            assert sorted(names) == sorted(pair.split()), (t, row)
            assert len(edge.ops) == 2
            stride = 2 if cell.reduction and SP.edge_labels[row].endswith(("s0", "s1")) else 1
            for name, module in zip(names, edge.ops):
                reference = DARTS_OPS_FACTORY[name](4, stride, False)
                assert type(module) in (type(reference), torch.nn.Sequential), (t, row, name)
                if type(module) is torch.nn.Sequential:  # a pool with its search-only BN
                    assert type(module[0]) is type(reference), (t, row, name)
        np.testing.assert_array_equal(SP.op_mask(t), [[op in pair.split() for op in SP.ops]
                                                      for pair in PUBLISHED[t]])


@pytest.mark.parametrize("relaxation", RELAXATIONS.names())
def test_masked_ops_get_weight_exactly_zero_and_no_gradient(relaxation):
    model = build(relaxation=relaxation)
    model.progress = 0.3  # mid-search: sparsestmax is one-hot at the end, with no gradient
    masks = model.op_masks()
    with torch.no_grad():  # far from uniform (sparsemax zeros some ops); masked α stay 0
        for t, a in model.alphas.items():
            a.copy_(torch.linspace(-1.0, 1.0, a.numel()).view(a.shape) * masks[t])
    opt = torch.optim.Adam(model.arch_parameters(), lr=0.1, weight_decay=1e-3)
    for step in range(2):
        opt.zero_grad()
        x, y = batch(seed=step)
        F.cross_entropy(model(x), y).backward()
        for t, a in model.alphas.items():
            w = model.mixing_weights()[t]
            assert torch.equal(w[~masks[t]], torch.zeros_like(w[~masks[t]])), t
            torch.testing.assert_close(w.sum(1), torch.ones(SP.n_edges))
            assert torch.equal(a.grad[~masks[t]], torch.zeros_like(a.grad[~masks[t]])), t
            assert torch.isfinite(a.grad).all() and a.grad[masks[t]].abs().sum() > 0, t
        opt.step()
    recorded = alphas_numpy(model)
    for t, a in model.alphas.items():  # masked α never moved off 0; recorded as −inf
        assert torch.equal(a[~masks[t]], torch.zeros_like(a[~masks[t]]))
        assert np.isneginf(recorded[t][~masks[t].numpy()]).all()
        assert np.isfinite(recorded[t][masks[t].numpy()]).all()


def test_weight_perturbations_stay_on_each_edges_ops():
    """SDARTS-RS / MS-DARTS perturb the mixing weights: only those of the ops an edge has."""
    model = build()
    masks = model.op_masks()
    p = {t: w.detach() for t, w in model.mixing_weights().items()}
    torch.manual_seed(0)
    for eps in (0.3, 2.0):  # 2.0: some rows clip to all zeros and get a one-hot
        for t, w in random_smoothing(p, eps, masks=masks).items():
            assert torch.equal(w[~masks[t]], torch.zeros_like(w[~masks[t]])), (eps, t)
            torch.testing.assert_close(w.sum(1), torch.ones(SP.n_edges))


def _pair_of(t: str, row: int) -> set[str]:
    return set(PUBLISHED[t][row].split())


def _row(j: int, target: int) -> int:
    k = target - 2
    return k * (k + 3) // 2 + j


@pytest.mark.parametrize("relaxation", RELAXATIONS.names())
def test_the_derived_cell_uses_only_each_edges_own_ops(relaxation):
    rng = np.random.default_rng(0)
    raw = {t: rng.normal(size=(SP.n_edges, len(SP.ops))) for t in SP.cell_types}
    for t, a in raw.items():  # raw values on the absent ops must not matter, even large ones
        a[~SP.op_mask(t)] = 50.0
    g = SP.derive(raw, relaxation=relaxation)
    for t, edges in genotype_ops(g).items():
        for op, j, target in edges:
            assert op in _pair_of(t, _row(j, target)), (t, op, j, target)
    masked = SP.logits(raw)  # what a run records; the dashboard derives from it
    normalise = get_relaxation(relaxation).numpy
    assert derive("s1", SP.ops, masked, normalise=normalise) == g
    assert parse_genotype(str(g), ops=SP.ops) == g
    dots = cell_dots(g, masked, SP.ops, normalise=normalise)
    assert set(dots) == {"normal", "reduce"} and "penwidth" in dots["normal"]


def test_indicators_on_uniform_alpha_count_two_ops_per_edge():
    model = build()
    with torch.no_grad():
        for a in model.alphas.values():
            a.zero_()
    alphas = alphas_numpy(model)
    g = genotype_ops(SP.derive(alphas))
    values = {}
    for t in SP.cell_types:
        w = softmax(alphas[t])
        np.testing.assert_array_equal(w, np.where(SP.op_mask(t), 0.5, 0.0))
        state = ind.CellState(SP.ops, alphas[t], w, g[t], alphas[t], g[t])
        values[t] = {n: INDICATORS.get(n).fn(state) for n in INDICATORS.names()
                     if INDICATORS.get(n).fn is not None}
    for t, v in values.items():
        with_skip = sum("skip_connect" in p.split() for p in PUBLISHED[t])
        assert v["entropy"] == pytest.approx(1.0)  # log 2 per edge, not log 6
        assert v["margin"] == 0.0
        assert v["skip_mass"] == pytest.approx(0.5 * with_skip / SP.n_edges)
        assert v["none_mass"] == 0.0 and v["none_share"] == 0.0
        assert v["alpha_norm"] == 0.0 and v["alpha_lse"] == pytest.approx(np.log(2))
    moved = SP.logits({t: np.random.default_rng(0).normal(size=(SP.n_edges, len(SP.ops)))
                       for t in SP.cell_types})
    assert ind.rank_tau(moved["normal"], moved["normal"], SP.ops) == 1.0  # the 2 dil edges
    assert np.isnan(ind.rank_tau(moved["reduce"], moved["reduce"], SP.ops))  # none has 2


def test_hessian_counts_only_the_ops_on_the_edges():
    model = build()
    x, y = batch()
    hvp, n = probes.alpha_hvp(model, [(x, y)], SP.cell_types, 1e-3)
    assert n == sum(int(SP.op_mask(t).sum()) for t in SP.cell_types) == 2 * 14 * 2
    lam = probes.hessian_eigenvalue(model, [(x, y)], SP.cell_types, 1e-3)
    exact = np.linalg.eigvalsh(probes.full_hessian(hvp, n)).max()
    assert lam == pytest.approx(exact, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(("algorithm", "method"), [
    ("bilevel-1st", "darts"), ("single", "darts"), ("bilevel-1st", "pc-darts"),
    ("single", "sdarts-rs")])
def test_one_epoch_search(algorithm, method):
    cfg = tiny(space="s1", algorithm=algorithm, method=method, pc_k=2, hessian_every=1,
               gap_every=1, alpha_every=1)
    events = []
    result = search(cfg, events.append)
    assert result.status == "completed", result.error
    g = parse_genotype(result.genotype, ops=SP.ops)
    for t, edges in genotype_ops(g).items():
        assert all(op in _pair_of(t, _row(j, target)) for op, j, target in edges), t
        assert np.array_equal(np.isfinite(result.alphas[t]), SP.op_mask(t))
    indicators = result.history[-1]["indicators"]
    for t in SP.cell_types:
        assert 0.0 < indicators[f"entropy.{t}"] <= 1.0
    assert np.isfinite(indicators["hessian_eig"]) and "disc_gap" in indicators
    steps = [e for e in events if getattr(e, "alphas", None) is not None and e.kind == "step"]
    assert steps and all(np.isneginf(e.alphas[t][~SP.op_mask(t)]).all()
                         for e in steps for t in SP.cell_types)


@pytest.mark.parametrize("options", [{}, {"edge_norm": True}, {"relaxation": "sparsemax"}])
def test_batched_forward_matches_the_reference(options):
    """The S1 cells take the batched path (edges with different ops, fastcell._mixed_round)
    and agree with the per-op reference: loss, every gradient, BN statistics."""
    fast, plain = fast_and_plain("s1", **options)
    assert all(runs_fast(c) for c in fast.modules() if isinstance(c, DartsCell))
    if fast.betas:
        with torch.no_grad():
            for b in (*fast.betas.values(), *plain.betas.values()):
                b.copy_(torch.linspace(-1.0, 1.0, b.numel()))
    x, y = batch(8)
    loss_f, grads_f = loss_and_grads(fast, (x, y))
    loss_p, grads_p = loss_and_grads(plain, (x, y))
    torch.testing.assert_close(loss_f, loss_p, rtol=1e-5, atol=0)
    scale = max(g.norm().item() for g in grads_p if g is not None)
    for (name, _), gf, gp in zip(plain.named_parameters(), grads_f, grads_p):
        assert (gf is None) == (gp is None), name
        if gp is not None:
            assert_close(gf, gp, scale, name)
    assert_same_state(fast, plain)
