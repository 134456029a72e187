"""Method variants (PC-DARTS, SDARTS-RS, MS-DARTS, LFR-DARTS) and relaxations (ALGORITHMS.md
§5-7, §9): hand-made checks of each mechanism, then every registered method end to end."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from darts_engine import (
    ALGORITHMS,
    METHODS,
    RELAXATIONS,
    SPACES,
    SearchControl,
    build_search,
    search,
)
from darts_engine.cli import config_from_args, main, parse_args
from darts_engine.config import ConfigError
from darts_engine.events import EpochRecord, LogRecord
from darts_engine.methods.lfr import stage_genotypes
from darts_engine.methods.pcdarts import PartialMixedOp, partial_channels
from darts_engine.methods.smoothing import clip_unit, eps_at, mean_shift, random_smoothing
from darts_engine.model.genotype import DARTS_OPS, derive_genotype, parse_genotype
from darts_engine.model.ops import DARTS_OPS_FACTORY
from darts_engine.model.relaxations import sparsemax, sparsemax_np
from darts_engine.model.spaces import DataShape
from darts_engine.model.supernet import MixedOp
from darts_engine.runs.store import RunStore
from darts_engine.search import current_genotype
from tests.helpers import tiny

SHAPE = DataShape(3, 8, 4)


# --- PC-DARTS: partial channels, edge normalisation, derivation with β ------------------------

@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 9])
def test_partial_mixed_op_shapes(k, stride, size):
    op = PartialMixedOp(8, stride, DARTS_OPS, DARTS_OPS_FACTORY, pool_bn=True, k=k)
    out = op(torch.randn(2, 8, size, size), torch.softmax(torch.randn(len(DARTS_OPS)), 0))
    expected = size if stride == 1 else math.ceil(size / 2)
    assert out.shape == (2, 8, expected, expected)
    conv = op.ops[DARTS_OPS.index("sep_conv_3x3")][0][1]  # the first depthwise conv
    assert conv.in_channels == 8 // k


@pytest.mark.parametrize("stride", [1, 2])
def test_partial_channels_with_k1_is_the_plain_mixed_op(stride):
    torch.manual_seed(0)
    plain = MixedOp(8, stride, DARTS_OPS, DARTS_OPS_FACTORY, pool_bn=True)
    partial = PartialMixedOp(8, stride, DARTS_OPS, DARTS_OPS_FACTORY, pool_bn=True, k=1)
    partial.load_state_dict(plain.state_dict())  # same keys: K=1 adds no parameters
    x, w = torch.randn(2, 8, 8, 8), torch.softmax(torch.randn(len(DARTS_OPS)), 0)
    assert torch.equal(partial(x, w), plain(x, w))


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_pc_supernet_with_k1_equals_plain_darts_given_the_same_weights(space):
    sp = SPACES.get(space)
    torch.manual_seed(0)
    plain = sp.build(4, 3 if space == "darts" else 1, SHAPE, seed=0)
    pc = sp.build(4, 3 if space == "darts" else 1, SHAPE, seed=0, mixed_op=partial_channels(1))
    pc.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(pc(x), plain(x))


def test_partial_channels_bypass_and_shuffle():
    """K=2, all weight on `none`: the processed half is zero, the bypassed half passes through
    (max-pooled on stride 2), and the shuffle interleaves them channel by channel."""
    w = torch.zeros(len(DARTS_OPS))
    w[DARTS_OPS.index("none")] = 1.0
    x = torch.randn(1, 4, 4, 4)
    out = PartialMixedOp(4, 1, DARTS_OPS, DARTS_OPS_FACTORY, True, k=2)(x, w)
    assert torch.equal(out[:, 0::2], torch.zeros(1, 2, 4, 4))  # shuffled: ops' output first
    assert torch.equal(out[:, 1::2], x[:, 2:])
    out = PartialMixedOp(4, 2, DARTS_OPS, DARTS_OPS_FACTORY, True, k=2)(x, w)
    assert torch.equal(out[:, 1::2], torch.nn.functional.max_pool2d(x[:, 2:], 2))


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_edge_normalisation_sums_to_one_per_node_and_beta_is_an_arch_parameter(space):
    s = build_search(tiny(space=space, method="pc-darts", pc_k=2, init_channels=4))
    model = s.model
    with torch.no_grad():
        for b in model.betas.values():
            b.normal_()
    for t, w in model.edge_weights().items():
        sums = torch.stack([part.sum() for part in w.split(list(model.node_sizes))])
        torch.testing.assert_close(sums, torch.ones(len(model.node_sizes)))
        assert w.shape == (len(model.edge_labels),)
    betas = {id(b) for b in model.betas.values()}
    assert betas <= {id(p) for p in model.arch_parameters()}
    assert betas <= {id(p) for g in s.ctx.a_opt.param_groups for p in g["params"]}
    assert not betas & {id(p) for g in s.ctx.w_opt.param_groups for p in g["params"]}
    assert all(f"betas.{t}" in model.state_dict() for t in model.cell_types)
    before = {t: b.detach().clone() for t, b in model.betas.items()}
    s.algorithm.step(s.ctx, *next(zip(s.data.train.epoch(0), s.data.held_out.epoch(0))))
    assert any(not torch.equal(before[t], b) for t, b in model.betas.items())  # Adam moved β


def test_derivation_with_beta_picks_the_edges_beta_prefers():
    # Every edge carries the same α (sep_conv_3x3 strongest), so without β the stable rule keeps
    # the first two inputs of each node; β favours the last two instead.
    alphas = {t: np.tile(np.eye(len(DARTS_OPS))[DARTS_OPS.index("sep_conv_3x3")], (14, 1))
              for t in ("normal", "reduce")}
    beta = np.zeros(14)
    for a, b in [(0, 2), (2, 5), (5, 9), (9, 14)]:
        beta[b - 2:b] = 3.0
    plain = derive_genotype("darts", alphas)
    with_beta = derive_genotype("darts", alphas, edge_weights={"normal": beta, "reduce": -beta})
    assert [j for _, j in plain.normal] == [0, 1] * 4
    assert [j for _, j in with_beta.normal] == [0, 1, 1, 2, 2, 3, 3, 4]
    assert [j for _, j in with_beta.reduce] == [0, 1] * 4  # -β prefers the first inputs
    assert {op for op, _ in with_beta.normal} == {"sep_conv_3x3"}  # β never changes the op
    # the loop derives with the model's own β
    s = build_search(tiny(space="darts", method="pc-darts", pc_k=2, init_channels=4))
    with torch.no_grad():
        for t in ("normal", "reduce"):
            s.model.alphas[t].copy_(torch.tensor(alphas[t]))
        s.model.betas["normal"].copy_(torch.tensor(beta))
        s.model.betas["reduce"].copy_(torch.tensor(-beta))
    assert parse_genotype(current_genotype(s)) == with_beta


def test_pc_darts_warmup_trains_weights_only():
    s = build_search(tiny(method="pc-darts", pc_k=2, warmup_epochs=1))
    arch0 = [p.detach().clone() for p in s.model.arch_parameters()]
    w0 = [p.detach().clone() for p in s.model.weight_parameters()]
    assert search(s.cfg, setup=s).status == "completed"
    assert all(torch.equal(a, p) for a, p in zip(arch0, s.model.arch_parameters()))
    assert not all(torch.equal(a, p) for a, p in zip(w0, s.model.weight_parameters()))


def test_method_config_errors_name_the_field():
    with pytest.raises(ConfigError) as e:
        tiny(method="pc-darts", pc_k=3, init_channels=4)
    assert e.value.field == "pc_k"
    with pytest.raises(ConfigError) as e:
        tiny(method="lfr-darts", epochs=2, lfr_stages=3)
    assert e.value.field == "lfr_stages"
    with pytest.raises(ConfigError) as e:
        tiny(method="nope")
    assert e.value.field == "method" and "pc-darts" in str(e.value)


# --- relaxations ------------------------------------------------------------------------------

def _sparsemax_brute_force(z: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex by trying every support set."""
    best, best_dist = None, np.inf
    for r in range(1, len(z) + 1):
        for support in itertools.combinations(range(len(z)), r):
            p = np.zeros_like(z)
            idx = list(support)
            p[idx] = z[idx] - (z[idx].sum() - 1) / r
            if (p >= -1e-12).all() and np.sum((p - z) ** 2) < best_dist:
                best, best_dist = p, np.sum((p - z) ** 2)
    return best


def test_sparsemax_sums_to_one_with_exact_zeros_and_matches_brute_force():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        for _ in range(20):
            z = rng.normal(scale=2.0, size=n)
            expected = _sparsemax_brute_force(z)
            got = sparsemax(torch.tensor(z)).numpy()
            np.testing.assert_allclose(got, expected, atol=1e-12)
            np.testing.assert_allclose(sparsemax_np(z), expected, atol=1e-12)
    p = sparsemax(torch.tensor([[3.0, 1.0, 0.2, -1.0], [0.1, 0.0, 0.05, 0.02]]))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))
    assert p[0].tolist() == [1.0, 0.0, 0.0, 0.0]          # exact zeros, not tiny positives
    assert (p[1] > 0).all()                                # close logits keep every op


def test_sparsemax_gradient_is_its_jacobian():
    z = torch.tensor([1.0, 0.8, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sparsemax, (z,))
    p = sparsemax(z)
    grad = torch.autograd.grad(p[0], z)[0]
    support = (p > 0).detach()
    expected = -support.double() / support.sum()
    expected[0] += 1.0
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("relaxation", RELAXATIONS.names())
def test_relaxation_sets_the_mixing_weights(relaxation):
    s = build_search(tiny(space="darts", relaxation=relaxation))
    with torch.no_grad():
        s.model.alphas["normal"].copy_(torch.randn(14, len(DARTS_OPS)) * 3)
    w = s.model.mixing_weights()["normal"]
    torch.testing.assert_close(w.sum(-1), torch.ones(14))
    assert ((w > 0).all() if relaxation == "softmax" else (w == 0).any())


# --- SDARTS-RS and MS-DARTS: perturbing the mixing weights of the w step -----------------------

def test_sdarts_rs_perturbation_stays_within_eps_and_the_unit_interval():
    torch.manual_seed(0)
    p = {"normal": torch.softmax(torch.randn(14, 8) * 2, -1)}
    for eps in (0.03, 0.1, 0.3):
        q = random_smoothing(p, eps, renormalise=False)["normal"]
        assert ((q - p["normal"]).abs() <= eps + 1e-7).all()
        assert ((q >= 0) & (q <= 1)).all()
        r = random_smoothing(p, eps)["normal"]            # as SDARTS' code: rows renormalised
        assert ((r >= 0) & (r <= 1)).all()
        torch.testing.assert_close(r.sum(-1), torch.ones(14))
    dead = clip_unit(torch.tensor([[-0.2, -0.05, -0.1], [0.5, 1.4, -0.3]]))
    assert dead.tolist() == [[0.0, 1.0, 0.0], [0.5, 1.0, 0.0]]  # all-zero row: 1 at its max


def test_eps_ramps_linearly_from_a_tenth():
    assert eps_at(0.3, 0, 50) == pytest.approx(0.03)
    assert eps_at(0.3, 25, 50) == pytest.approx(0.165)
    assert eps_at(0.25, 40, 40) == pytest.approx(0.25)


def test_mean_shift_moves_the_point_to_the_kernel_weighted_mean():
    p = {"a": torch.full((2, 3), 0.5, dtype=torch.float64),
         "b": torch.tensor([[0.2, 0.8]], dtype=torch.float64)}
    target = {"a": torch.zeros(2, 3, dtype=torch.float64),
              "b": torch.ones(1, 2, dtype=torch.float64)}

    def loss_fn(w):  # a toy loss: squared distance to a target point
        return sum(((w[t] - target[t]) ** 2).sum() for t in w)

    eps, n, h = 0.2, 4, 0.3
    torch.manual_seed(3)
    got = mean_shift(p, loss_fn, eps, samples=n, iters=1, bandwidth=h)
    torch.manual_seed(3)  # redraw the same samples and do the arithmetic by hand
    raw = [{t: w + (2 * torch.rand_like(w) - 1) * eps for t, w in p.items()} for _ in range(n)]
    clipped = [{t: w.clamp(0, 1) for t, w in r.items()} for r in raw]
    clipped = [{t: w / w.sum(-1, keepdim=True) for t, w in c.items()} for c in clipped]
    losses = np.array([float(loss_fn(c)) for c in clipped])
    omega = np.exp(losses - losses.max()) / np.exp(losses - losses.max()).sum()
    for t in p:
        d = np.array([float(torch.linalg.vector_norm(p[t] - c[t])) for c in clipped])
        k = np.exp(-0.5 * (d / h) ** 2) / (h * math.sqrt(2 * math.pi))
        expected = sum(omega[i] * k[i] * raw[i][t].numpy() for i in range(n)) / (omega * k).sum()
        np.testing.assert_allclose(got[t].numpy(), expected, rtol=1e-10)
        assert not np.allclose(expected, p[t].numpy())  # it did move
    # a sharp kernel keeps the point near p; a wide one lets the loss weights pull it
    torch.manual_seed(3)
    narrow = mean_shift(p, loss_fn, eps, samples=n, iters=1, bandwidth=1e-3)
    assert (narrow["a"] - p["a"]).abs().max() <= eps


@pytest.mark.parametrize("method", ["sdarts-rs", "ms-darts"])
def test_perturbed_weight_step_leaves_alpha_to_the_alpha_step(method):
    """Same seed, same batches: α after one bilevel-1st step equals plain DARTS' (the α step
    comes first and sees clean α; the w step's perturbation never touches α), the weights differ,
    and during warm-up α does not move at all."""
    plain, smooth = build_search(tiny()), build_search(tiny(method=method))
    batch = next(zip(plain.data.train.epoch(0), plain.data.held_out.epoch(0)))
    mixing = smooth.ctx.w_step_mixing(smooth.model, batch[0])
    clean = smooth.model.mixing_weights()
    assert not torch.allclose(mixing["cell"], clean["cell"])
    a0 = smooth.model.alphas["cell"].detach().clone()
    for s in (plain, smooth):
        s.algorithm.step(s.ctx, *batch)
    assert torch.equal(plain.model.alphas["cell"], smooth.model.alphas["cell"])
    assert not torch.equal(plain.model.alphas["cell"], a0)
    assert not torch.equal(plain.model.classifier.weight, smooth.model.classifier.weight)
    smooth.ctx.update_alpha = False
    a1 = smooth.model.alphas["cell"].detach().clone()
    smooth.algorithm.step(smooth.ctx, *batch)
    assert torch.equal(smooth.model.alphas["cell"], a1)


# --- LFR-DARTS: stages derive, freeze and deepen ------------------------------------------------

def _stage_params(model, stage):
    return {n: p.detach().clone() for n, p in model.named_parameters()
            if any(p is q for m in model.resolution_stages()[stage] for q in m.parameters())}


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_lfr_gives_one_genotype_per_stage_and_freezes_earlier_stages(space):
    cfg = tiny(space=space, method="lfr-darts", epochs=3, lfr_stages=3, data_limit=64)
    s = build_search(cfg)
    snapshots, events = {}, []

    def on_event(ev):
        events.append(ev)
        if isinstance(ev, EpochRecord):  # stage k is epoch k
            snapshots[ev.epoch] = [_stage_params(s.model, k) for k in range(3)]
            assert s.model.depth == ev.epoch + 1  # deepened stage by stage

    result = search(cfg, on_event, setup=s)
    assert result.status == "completed", result.error
    final = [_stage_params(s.model, k) for k in range(3)]
    for stage in range(3):
        # stage k trained during epoch k (and not before), never after
        changed = [any(not torch.equal(final[stage][n], v) for n, v in snapshots[e][stage].items())
                   for e in range(3)]
        assert changed == [stage > e for e in range(3)], (stage, changed)
    for stage in (0, 1):
        assert not any(p.requires_grad for m in s.model.resolution_stages()[stage]
                       for p in m.parameters())
    records = [e for e in events if isinstance(e, EpochRecord)]
    assert [int(r.extras["lfr_stage"][0]) for r in records] == [0, 1, 2]
    freezes = [e.message for e in events if isinstance(e, LogRecord)]
    assert len(freezes) == 2 and all("frozen" in m for m in freezes)
    sp = SPACES.get(space)
    cells = {t: records[-1].extras[f"lfr_cells_{t}"] for t in sp.cell_types}
    assert all(c.shape == (3, sp.n_edges, len(sp.ops)) for c in cells.values())
    stages = stage_genotypes(sp.ops, sp.edge_labels, cells)
    assert len(stages) == 3  # one derived cell per stage
    kept = 2 * 4 if space == "darts" else 6
    assert all(len(edges) == kept for stage in stages for edges in stage.values())
    frozen_text = freezes[0].split(": ", 1)[1]
    assert parse_genotype(frozen_text, ops=sp.ops).cells()  # the log carries a real genotype


def test_lfr_resume_at_a_stage_boundary_matches_an_uninterrupted_run(home):
    cfg = tiny(method="lfr-darts", epochs=3, lfr_stages=3)
    full = search(cfg)
    store = RunStore(home)
    run_id = store.create_run(cfg.to_dict())
    control = SearchControl()

    def stop_after_first_stage(ev):
        if isinstance(ev, EpochRecord) and ev.epoch == 0:
            control.stop()

    first = search(cfg, stop_after_first_stage, control, checkpoint_dir=store.run_dir(run_id))
    assert first.status == "stopped" and first.epochs_done == 1
    resumed = search(cfg, checkpoint_dir=store.run_dir(run_id), resume=True)
    assert resumed.status == "completed" and resumed.genotype == full.genotype
    np.testing.assert_array_equal(resumed.alphas["cell"], full.alphas["cell"])


# --- every registered method, end to end -------------------------------------------------------

EXTRAS = {"darts": [], "pc-darts": ["beta_cell", "edge_weight_cell"],
          "sdarts-rs": ["perturb_eps"], "ms-darts": ["perturb_eps"],
          "lfr-darts": ["lfr_stage", "lfr_cells_cell"]}


def _method_config(method, **kw):
    extra = {"lfr_stages": 2} if method == "lfr-darts" else {}
    return tiny(method=method, epochs=2, alpha_every=1, **extra, **kw)


@pytest.mark.parametrize("method", METHODS.names())
def test_two_epoch_search_of_every_method_is_recorded(home, method):
    store = RunStore(home)
    cfg = _method_config(method)
    run_id = store.create_run(cfg.to_dict(), name=method)
    rec = store.recorder(run_id)
    result = search(cfg, rec, checkpoint_dir=store.run_dir(run_id))
    rec.close()
    assert result.status == "completed", result.error
    run = store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 2
    assert run["config"]["method"] == method
    assert parse_genotype(run["genotype"], ops=SPACES.get("nb201").ops)
    assert list(store.epoch_metrics(run_id)["epoch"]) == [0, 1]
    for name in EXTRAS.get(method, []):  # what each method stores per epoch
        index, arr = store.extras_history(run_id, name)
        assert list(index["epoch"]) == [0, 1] and np.isfinite(arr).all(), name


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS.names())
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_with_every_update_rule_on_the_darts_space(method, algorithm):
    kw = {"pc_k": 2} if method == "pc-darts" else {}
    result = search(_method_config(method, space="darts", algorithm=algorithm, **kw))
    assert result.status == "completed", result.error


@pytest.mark.parametrize("method", METHODS.names())
def test_cli_runs_every_registered_method(home, method, capsys):
    flags = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space",
             "nb201", "--init-channels", "4", "--cells", "1", "--device", "cpu", "--epochs", "2",
             "--method", method, "--lfr-stages", "2", "--pc-k", "2"]
    assert config_from_args(parse_args(["search", *flags])).method == method
    assert main(["--home", str(home), "search", "--no-progress", *flags]) == 0
    run = RunStore(home).list_runs().iloc[0]
    assert run["status"] == "completed" and run["epochs_done"] == 2
    assert RunStore(home).get_run(run["id"])["config"]["method"] == method


def test_offer_preset_passes_extra_fields_to_preset() -> None:
    from darts_engine.methods.base import offer_preset
    from darts_engine.train.presets import PRESETS

    title = "_test offer_preset fields"
    try:
        offer_preset(title, "one line", {"epochs": 2}, indicator="none_mass",
                     measured="**m**", reproduce="python -m darts_engine.cli search")
        p = PRESETS[title]
        assert (p.description, p.overrides, p.indicator, p.measured, p.reproduce) == (
            "one line", {"epochs": 2}, "none_mass", "**m**", "python -m darts_engine.cli search")
        with pytest.raises(TypeError, match="bogus"):
            offer_preset(title + " 2", "x", {}, bogus=1)
    finally:
        PRESETS.pop(title, None)
        PRESETS.pop(title + " 2", None)


# --- typed artifacts: what a method declares is what it stores ---------------------------------

@pytest.mark.parametrize("method, kinds", [
    ("pc-darts", {"edge_weights", "edge_logits"}), ("lfr-darts", {"stage", "stage_cells"}),
    ("darts", set())])
@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_declared_artifacts_are_the_extras_the_run_stores(method, kinds, space):
    from darts_engine.events import RunStarted

    events = []
    cfg = tiny(space=space, method=method, pc_k=2, epochs=3 if method == "lfr-darts" else 1)
    result = search(cfg, events.append)
    assert result.status == "completed", result.error
    started = next(e for e in events if isinstance(e, RunStarted))
    epoch = next(e for e in events if isinstance(e, EpochRecord))
    assert started.task == "classification"
    assert [m["name"] for m in started.metrics if m["headline"]] == ["val_acc"]
    assert {a["name"] for a in started.artifacts} == set(epoch.extras)
    assert {a["kind"] for a in started.artifacts} == kinds
    cells = {a["cell"] for a in started.artifacts if a["kind"] != "stage"}
    assert cells <= set(SPACES.get(space).cell_types)
