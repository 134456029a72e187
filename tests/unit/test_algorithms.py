"""Update rules against independent computations (Liu et al. 2019, §2.3; quark0 architect.py).

The second-order hypergradient is checked against exact autograd through the virtual SGD step
on a tiny float64 supernet; the first-order and single-level rules are checked for where their
gradients come from.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from darts_engine import TASKS, SearchConfig, search
from darts_engine.events import StepRecord
from darts_engine.model.genotype import NB201_OPS
from darts_engine.model.supernet import NB201Supernet
from darts_engine.train.algorithms import (
    StepContext,
    bilevel_first_order,
    bilevel_second_order,
    single_level,
    unrolled_alpha_grads,
)


def _smooth(module: nn.Module) -> nn.Module:
    """Swap ReLU for Softplus. The finite-difference Hessian-vector product differentiates
    ∇_α L, which jumps wherever a ReLU flips; with a smooth activation the approximation error
    is O(ε²) and can be checked against exact second derivatives."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.Softplus(beta=2.0))
        else:
            _smooth(child)
    return module


def _setup(seed: int = 0, momentum_steps: int = 1):
    torch.manual_seed(seed)
    model = _smooth(NB201Supernet(NB201_OPS, c=4, cells_per_stage=1, num_classes=3,
                                  in_channels=2,
                                  alpha_generator=torch.Generator().manual_seed(seed))).double()
    with torch.no_grad():  # larger α so the mixing is far from uniform
        model.alphas["cell"].normal_(0, 0.5)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-3, betas=(0.5, 0.999),
                             weight_decay=1e-3)
    g = torch.Generator().manual_seed(seed + 1)
    train = (torch.randn(8, 2, 6, 6, generator=g, dtype=torch.float64),
             torch.randint(0, 3, (8,), generator=g))
    held = (torch.randn(8, 2, 6, 6, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (8,), generator=g))
    ctx = StepContext(model, w_opt, a_opt, lr=0.1, grad_clip=5.0, task=TASKS.get("classification"))
    for _ in range(momentum_steps):  # give SGD a momentum buffer, as mid-search
        w_opt.zero_grad()
        F.cross_entropy(model(train[0]), train[1]).backward()
        w_opt.step()
    return ctx, train, held


def _exact_hypergradient(ctx: StepContext, train, held) -> torch.Tensor:
    """d/dα L_val(w − ξ(μm + ∇_w L_train(w, α) + λw), α) by exact autograd (create_graph)."""
    model = ctx.model
    names, weights = zip(*[(n, p) for n, p in model.named_parameters()
                           if not n.startswith("alphas.")])
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    group = ctx.w_opt.param_groups[0]
    loss_t = F.cross_entropy(torch.func.functional_call(
        model, {n: b.clone() for n, b in buffers.items()}, (train[0],)), train[1])
    g_w = torch.autograd.grad(loss_t, weights, create_graph=True)
    virtual = {n: p - ctx.lr * (group["momentum"] * ctx.w_opt.state[p]["momentum_buffer"] + g
                                + group["weight_decay"] * p)
               for n, p, g in zip(names, weights, g_w)}
    loss_v = F.cross_entropy(torch.func.functional_call(
        model, {**virtual, **{n: b.clone() for n, b in buffers.items()}}, (held[0],)), held[1])
    (grad,) = torch.autograd.grad(loss_v, model.alphas["cell"])
    return grad


def test_second_order_hypergradient_matches_exact_autograd():
    ctx, train, held = _setup()
    exact = _exact_hypergradient(ctx, train, held)
    before = {n: t.clone() for n, t in ctx.model.state_dict().items()}
    (approx,), _, _ = unrolled_alpha_grads(ctx, train, held)  # ε = 0.01/‖v‖ as in quark0
    # weights and BN buffers are restored exactly (bit for bit)
    after = ctx.model.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before)
    rel = (approx - exact).norm() / exact.norm()
    assert rel < 2e-3, rel
    # central differences converge quadratically: 10× smaller ε, ~100× smaller error
    (finer,), _, _ = unrolled_alpha_grads(ctx, train, held, fd_scale=1e-3)
    assert (finer - exact).norm() / exact.norm() < rel / 30
    # and the implicit term matters: first order alone is clearly different
    first = torch.autograd.grad(F.cross_entropy(ctx.model(held[0]), held[1]),
                                ctx.model.alphas["cell"])[0]
    assert (first - exact).norm() / exact.norm() > 10 * rel


def test_single_level_updates_both_from_one_backward_on_one_batch():
    ctx, train, held = _setup()
    model = ctx.model
    w0 = [p.detach().clone() for p in model.weight_parameters()]
    a0 = model.alphas["cell"].detach().clone()
    calls = []
    hook = model.register_forward_hook(lambda m, i, o: calls.append(i[0].data_ptr()))
    # expected α gradient: the training loss on the same batch at the same point
    expected = torch.autograd.grad(F.cross_entropy(model(train[0]), train[1]),
                                   model.alphas["cell"])[0]
    calls.clear()
    single_level(ctx, train, None)
    hook.remove()
    assert calls == [train[0].data_ptr()]  # one forward pass, on the training batch
    assert torch.allclose(model.alphas["cell"].grad, expected)
    assert not torch.equal(model.alphas["cell"].detach(), a0)
    assert all(not torch.equal(p.detach(), q) for p, q in zip(model.weight_parameters(), w0))


def test_first_order_alpha_gradient_comes_only_from_held_out_batch():
    ctx, train, held = _setup()
    model = ctx.model
    expected = torch.autograd.grad(F.cross_entropy(model(held[0]), held[1]),
                                   model.alphas["cell"])[0]
    bilevel_first_order(ctx, train, held)
    # after the step α.grad is exactly the held-out gradient: the w step added nothing to it
    assert torch.allclose(model.alphas["cell"].grad, expected)


def test_alphas_never_reach_the_weight_optimiser():
    ctx, _, _ = _setup()
    in_sgd = {id(p) for g in ctx.w_opt.param_groups for p in g["params"]}
    assert not in_sgd & {id(a) for a in ctx.model.arch_parameters()}
    in_adam = {id(p) for g in ctx.a_opt.param_groups for p in g["params"]}
    assert in_adam == {id(a) for a in ctx.model.arch_parameters()}


def test_warmup_freezes_alphas():
    ctx, train, held = _setup()
    ctx.update_alpha = False
    a0 = ctx.model.alphas["cell"].detach().clone()
    bilevel_first_order(ctx, train, held)
    single_level(ctx, train, None)
    assert torch.equal(ctx.model.alphas["cell"].detach(), a0)


# --- step order: quark0 (α, then w) vs AutoDL's NB201 DARTS-V1 (w, then α) --------------------

def _forward_trace(ctx, step, train, held):
    """Each forward pass of one step: (batch, α already updated?, w already updated?)."""
    a0 = ctx.model.alphas["cell"].detach().clone()
    params = list(ctx.model.weight_parameters())  # the real w (functional_call swaps them)
    w0 = [p.detach().clone() for p in params]
    names = {train[0].data_ptr(): "train", held[0].data_ptr(): "held"}
    trace = []

    def hook(module, inputs, output):
        trace.append((names[inputs[0].data_ptr()],
                      not torch.equal(ctx.model.alphas["cell"].detach(), a0),
                      any(not torch.equal(p.detach(), q) for p, q in zip(params, w0))))

    handle = ctx.model.register_forward_hook(hook)
    step(ctx, train, held)
    handle.remove()
    return trace


@pytest.mark.parametrize("step", [bilevel_first_order, bilevel_second_order])
def test_step_order_sets_what_each_step_sees(step):
    ctx, train, held = _setup()
    trace = _forward_trace(ctx, step, train, held)
    # quark0: the α step at the old w, then the w step with the new α
    assert all(not w for b, _, w in trace if b == "held")
    assert trace[-1] == ("train", True, False)
    ctx, train, held = _setup()
    ctx.step_order = "weights-first"
    trace = _forward_trace(ctx, step, train, held)
    # AutoDL V1: the w step with the old α, then the α step at the new w
    assert trace[0] == ("train", False, False)
    assert not any(a for _, a, _ in trace)
    assert all(w for b, _, w in trace if b == "held")
    assert not torch.equal(ctx.model.alphas["cell"].detach(), _setup()[0].model.alphas["cell"])


def test_weights_first_matches_a_hand_ordered_update():
    """AutoDL exps/NAS-Bench-201-algos/DARTS-V1.py `search_func`: the w step uses α_t; the α step
    then takes ∇_α L_val(w_{t+1}, α_t). Done by hand here with plain autograd and torch's
    optimisers on an identical copy, and compared with one step of the engine."""
    ctx, train, held = _setup()
    ctx.step_order = "weights-first"
    bilevel_first_order(ctx, train, held)

    ref, _, _ = _setup()
    model, alpha = ref.model, ref.model.alphas["cell"]
    weights = list(model.weight_parameters())
    a0 = alpha.detach().clone()
    ref.w_opt.zero_grad()
    w_grads = torch.autograd.grad(F.cross_entropy(model(train[0]), train[1]), weights)
    scale = min(1.0, 5.0 / (float(torch.cat([g.flatten() for g in w_grads]).norm()) + 1e-6))
    for p, g in zip(weights, w_grads):
        p.grad = g * scale
    ref.w_opt.step()
    assert torch.equal(alpha.detach(), a0)                    # the w step saw α before its update
    alpha.grad = torch.autograd.grad(F.cross_entropy(model(held[0]), held[1]), alpha)[0]
    ref.a_opt.step()

    for (n, p), (_, q) in zip(ctx.model.named_parameters(), model.named_parameters()):
        assert torch.allclose(p, q, rtol=0, atol=1e-12), n
    # and the order matters: quark0's order lands elsewhere
    other, _, _ = _setup()
    bilevel_first_order(other, train, held)
    assert not torch.allclose(other.model.alphas["cell"], ctx.model.alphas["cell"], atol=1e-9)


def _autodl_cosine(base: float, eta_min: float, epochs: int, epoch: int, it: float,
                   warmup: int = 0) -> float:
    """AutoDL xautodl/procedures/optimizers.py `CosineAnnealingLR.get_lr`, restated: past the
    warm-up the lr depends on the epoch only (`current_iter` is used only inside the warm-up)."""
    if warmup <= epoch < epochs:
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * (epoch - warmup) / epochs)) / 2
    if epoch >= epochs:
        return eta_min
    return (epoch / warmup + it / warmup) * base


def test_weights_first_lr_per_iteration_follows_autodl_scheduler():
    """DARTS-V1.py calls `w_scheduler.update(epoch, 0.0)` per epoch and
    `scheduler.update(None, step / len(loader))` per iteration (warmup 0 in DARTS.config)."""
    cfg = SearchConfig(space="nb201", dataset="shapes", data_limit=128, batch_size=16,
                       epochs=3, init_channels=4, cells=1, device="cpu", seed=0, lr=0.05,
                       lr_min=0.002, step_order="weights-first", alpha_every=0)
    steps: list[StepRecord] = []
    result = search(cfg, lambda e: steps.append(e) if isinstance(e, StepRecord) else None)
    assert result.status == "completed", result.error
    n = 4  # 64 training images / batch 16
    assert len(steps) == 3 * n
    for r in steps:
        k = (r.step - 1) % n
        assert r.lr == pytest.approx(_autodl_cosine(0.05, 0.002, 3, r.epoch, k / n), abs=1e-15)
    assert steps[0].lr == 0.05 and steps[-1].lr == pytest.approx(0.002 + 0.048 * 0.25)


# --- the method's extra loss terms: one call site per step, added to the task's loss ----------

C_TERM = 0.37


def _alpha_term(model, batch):
    return C_TERM * (model.alphas["cell"] ** 2).sum()   # ∇_α = 2c·α


def _weight_term(model, batch):
    w = next(iter(model.weight_parameters()))
    return C_TERM * (w ** 2).sum()                       # ∇_w = 2c·w (first weight only)


@pytest.mark.parametrize("rule", [bilevel_first_order, single_level])
def test_alpha_loss_term_adds_exactly_its_own_gradient(rule):
    grads = {}
    for with_term in (False, True):
        ctx, train, held = _setup(seed=3)
        ctx.grad_clip = 0.0
        alpha0 = ctx.model.alphas["cell"].detach().clone()
        ctx.alpha_terms = _alpha_term if with_term else None
        rule(ctx, train, held)
        grads[with_term] = ctx.model.alphas["cell"].grad.detach().clone()
    assert torch.allclose(grads[True] - grads[False], 2 * C_TERM * alpha0, rtol=1e-9, atol=1e-12)


def test_weight_loss_term_adds_exactly_its_own_gradient():
    grads = {}
    for with_term in (False, True):
        ctx, train, held = _setup(seed=4)
        ctx.grad_clip, ctx.update_alpha = 0.0, False    # the w step alone, unclipped
        w = next(iter(ctx.model.weight_parameters()))
        w0 = w.detach().clone()
        ctx.weight_terms = _weight_term if with_term else None
        bilevel_first_order(ctx, train, held)
        grads[with_term] = w.grad.detach().clone()
    assert torch.allclose(grads[True] - grads[False], 2 * C_TERM * w0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("order", ["alpha-first", "weights-first"])
def test_search_setup_hands_the_configured_step_order_to_the_step(order):
    """The step rules read `ctx.step_order`; the tests above set it by hand. This checks the
    config reaches it. Catches: build_search (train/setup.py) not passing cfg.step_order to
    StepContext, which silently runs every search alpha-first."""
    from darts_engine.train.setup import build_search

    cfg = SearchConfig(space="nb201", dataset="shapes", data_limit=64, batch_size=16,
                       init_channels=4, cells=1, device="cpu", seed=0, step_order=order)
    assert build_search(cfg).ctx.step_order == order
