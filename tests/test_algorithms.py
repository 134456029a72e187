"""Update rules against independent computations (ALGORITHMS.md §3-4).

The second-order hypergradient is checked against exact autograd through the virtual SGD step
on a tiny float64 supernet; the first-order and single-level rules are checked for where their
gradients come from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darts_engine.algorithms import (StepContext, bilevel_first_order, single_level,
                                     unrolled_alpha_grads)
from darts_engine.genotype import NB201_OPS
from darts_engine.supernet import NB201Supernet


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
    ctx = StepContext(model, w_opt, a_opt, lr=0.1, grad_clip=5.0)
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
