"""Update rules, registered by name. One search loop (search.py) serves them all.

- `bilevel-1st`: DARTS first order (Liu et al. 2019, §2.3, ξ = 0): the α gradient is
  ∇_α L_val(w, α) on a held-out batch; the w step is SGD on a training batch.
- `bilevel-2nd`: DARTS second order, unrolled (Liu et al. 2019, §2.3; quark0
  cnn/architect.py `_backward_step_unrolled`): virtual step that mimics SGD with momentum and
  weight decay, ξ = current weight lr, finite-difference Hessian-vector product with
  ε = 0.01/‖v‖ on the training batch; weights and BN buffers are restored exactly.
- `single`: Single-DARTS (Hou et al. 2021, arXiv 2108.08128): one forward and one backward on
  one training batch give both w.grad and α.grad; the SGD and Adam steps are taken at one point.

Step order of the bi-level rules (config `step_order`, `StepContext.step_order`):
- "alpha-first" (default): quark0 cnn/train_search.py `train`: `architect.step(...)` on the
  held-out batch, then the w step with the updated α.
- "weights-first": AutoDL-Projects exps/NAS-Bench-201-algos/DARTS-V1.py `search_func`: the w
  step with the current α, then the α step at the new w. (AutoDL's DARTS-V2.py, the unrolled
  rule, keeps α first; weights-first with `bilevel-2nd` has no reference script.)

What is minimised comes from the run's task and method, through `StepContext`: the task's
w-step and α-step losses (`task.w_loss` / `task.alpha_loss`, e.g. cross-entropy) plus the
method's extra terms (`weight_terms` / `alpha_terms`, e.g. a β-DARTS or DrNAS regulariser),
added in one place, `objective`. The task also gives the per-batch metrics the loop reports.

Gradient hygiene: α never enters the SGD optimiser; each step asks autograd only for the
gradients it is about to use (`autograd.grad(..., alphas)` / `backward(inputs=weights)`), so
no optimiser ever sees gradients of the other stream's loss. (quark0 keeps α out of
`model.parameters()`; AutoDL's V1 script clips `network.parameters()`, α included.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.func import functional_call

from ..model.supernet import Supernet
from ..registries import ALGORITHMS

Batch = tuple[torch.Tensor, torch.Tensor]
# (model, training batch) -> mixing weights for the w step (MS-DARTS evaluates the batch)
MixingFn = Callable[[Supernet, Batch], dict[str, torch.Tensor] | None]
# (model, batch) -> an extra loss term (0-d) for one step's objective, or None for none
TermsFn = Callable[[Supernet, Batch], torch.Tensor | None]
Forward = Callable[..., torch.Tensor]  # (inputs, mixing weights | None) -> outputs


class StepTask(Protocol):
    """What the update rules need from the run's task (tasks/base.py `Task`)."""

    def outputs(self, model: Forward, batch: Any,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor: ...
    def w_loss(self, outputs: torch.Tensor, batch: Any) -> torch.Tensor: ...
    def alpha_loss(self, outputs: torch.Tensor, batch: Any) -> torch.Tensor: ...
    def batch_metrics(self, outputs: torch.Tensor, batch: Any,
                      split: str) -> dict[str, torch.Tensor]: ...


@dataclass
class StepContext:
    """Everything a step needs; the loop owns it and updates lr / update_alpha per epoch."""

    model: Supernet
    w_opt: torch.optim.Optimizer   # SGD, or Adam (config `optimizer`)
    a_opt: torch.optim.Adam
    lr: float                  # current weight lr (ξ of the unrolled step)
    grad_clip: float
    task: StepTask             # the losses of both steps and the per-batch metrics
    update_alpha: bool = True  # False during warm-up epochs
    step_order: str = "alpha-first"  # bi-level only: "alpha-first" (quark0) | "weights-first"
    # Mixing weights for the w step (None: the model's own softmax). MS-DARTS / SDARTS hook in.
    w_step_mixing: MixingFn | None = None
    # The method's extra loss terms on the w step and on the α step (None: none).
    weight_terms: TermsFn | None = None
    alpha_terms: TermsFn | None = None


@dataclass
class StepStats:
    """Per-step numbers as 0-d tensors: the loop turns them into floats only when it reports."""

    train_loss: torch.Tensor
    weight_grad_norm: torch.Tensor
    alpha_grad_norm: torch.Tensor | None = None
    val_loss: torch.Tensor | None = None
    train_metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # the task's, by name
    val_metrics: dict[str, torch.Tensor] = field(default_factory=dict)    # on the α batch


@dataclass(frozen=True)
class Algorithm:
    name: str
    step: Callable[[StepContext, Batch, Batch | None], StepStats]
    uses_held_out: bool  # α is fitted on the held-out stream (bi-level)
    description: str


def objective(ctx: StepContext, loss: torch.Tensor, batch: Batch,
              *hooks: TermsFn | None) -> torch.Tensor:
    """The task's loss plus the extra terms of the given method hooks: the one place where
    `weight_terms` / `alpha_terms` enter a step."""
    for hook in hooks:
        term = hook(ctx.model, batch) if hook is not None else None
        if term is not None:
            loss = loss + term
    return loss


def w_forward(ctx: StepContext, batch: Batch, weights: dict[str, torch.Tensor] | None = None,
              model: Forward | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(w-step objective, outputs): the task's w loss plus the method's w terms."""
    out = ctx.task.outputs(model or ctx.model, batch, weights)
    return objective(ctx, ctx.task.w_loss(out, batch), batch, ctx.weight_terms), out


def alpha_forward(ctx: StepContext, batch: Batch,
                  model: Forward | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(α-step objective, outputs): the task's α loss plus the method's α terms."""
    out = ctx.task.outputs(model or ctx.model, batch)
    return objective(ctx, ctx.task.alpha_loss(out, batch), batch, ctx.alpha_terms), out


def _grad_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _set_alpha_grads(ctx: StepContext, grads: Sequence[torch.Tensor]) -> torch.Tensor:
    ctx.a_opt.zero_grad(set_to_none=True)
    for p, g in zip(ctx.model.arch_parameters(), grads):
        p.grad = g.detach()
    ctx.a_opt.step()
    return _grad_norm(grads)


def weight_step(ctx: StepContext, batch: Batch) -> StepStats:
    """Zero w grads, forward, backward into w only, clip, SGD step: loss, metrics, grad norm."""
    weights = list(ctx.model.weight_parameters())
    ctx.w_opt.zero_grad(set_to_none=True)
    mixing = ctx.w_step_mixing(ctx.model, batch) if ctx.w_step_mixing else None
    loss, out = w_forward(ctx, batch, mixing)
    loss.backward(inputs=weights)
    norm = _clip(weights, ctx.grad_clip)
    ctx.w_opt.step()
    return StepStats(loss.detach(), norm,
                     train_metrics=ctx.task.batch_metrics(out.detach(), batch, "train"))


def _clip(weights: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    with_grad = [p for p in weights if p.grad is not None]
    if max_norm > 0:
        return nn.utils.clip_grad_norm_(with_grad, max_norm).detach()
    return _grad_norm([p.grad for p in with_grad])


# --- bilevel, first order ------------------------------------------------------------------------

def bilevel_first_order(ctx: StepContext, train: Batch, held: Batch | None) -> StepStats:
    def alpha_grads() -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        val_loss, val_logits = alpha_forward(ctx, held)
        grads = torch.autograd.grad(val_loss, ctx.model.arch_parameters())
        return list(grads), val_loss.detach(), val_logits.detach()

    return _bilevel_step(ctx, train, held, alpha_grads)


def _bilevel_step(ctx: StepContext, train: Batch, held: Batch | None,
                  alpha_grads: Callable[[], tuple[list[torch.Tensor], torch.Tensor,
                                                  torch.Tensor]]) -> StepStats:
    """One α step (Adam on `alpha_grads()`) and one w step, in `ctx.step_order`."""
    assert held is not None, "bi-level steps need a held-out batch"
    alpha: dict[str, torch.Tensor | None] = {}

    def alpha_step() -> None:
        grads, val_loss, val_logits = alpha_grads()
        alpha["norm"] = _set_alpha_grads(ctx, grads)
        alpha["loss"] = val_loss
        alpha["metrics"] = ctx.task.batch_metrics(val_logits, held, "held_out")

    if ctx.update_alpha and ctx.step_order == "alpha-first":
        alpha_step()
    stats = weight_step(ctx, train)
    if ctx.update_alpha and ctx.step_order == "weights-first":
        alpha_step()
    stats.alpha_grad_norm, stats.val_loss = alpha.get("norm"), alpha.get("loss")
    stats.val_metrics = alpha.get("metrics") or {}
    return stats


# --- bilevel, second order (unrolled) ------------------------------------------------------------

FD_SCALE = 0.01  # ε = 0.01 / ‖v‖ (quark0 architect.py)


def unrolled_alpha_grads(ctx: StepContext, train: Batch, held: Batch, fd_scale: float = FD_SCALE
                         ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """∇_α L_val(w', α) − ξ·∇²_{α,w} L_train(w, α)·∇_{w'} L_val(w', α) (quark0 architect.py).

    Returns (α grads, validation loss at w', validation logits at w').
    """
    model = ctx.model
    trainable = {id(p) for p in model.weight_parameters()}  # not α / β, nothing frozen
    names, weights = zip(*[(n, p) for n, p in model.named_parameters() if id(p) in trainable])
    alphas = model.arch_parameters()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    group = ctx.w_opt.param_groups[0]
    mu, wd, xi = group["momentum"], group["weight_decay"], ctx.lr

    # 1. Virtual step w' = w − ξ(μ·m + ∇_w L_train + λ·w), mimicking the real SGD update.
    loss_t, _ = w_forward(ctx, train)
    g_w = torch.autograd.grad(loss_t, weights)
    virtual = {}
    for n, p, g in zip(names, weights, g_w):
        buf = ctx.w_opt.state.get(p, {}).get("momentum_buffer")
        moment = mu * buf if buf is not None else torch.zeros_like(p)
        virtual[n] = (p.detach() - xi * (moment + g + wd * p.detach())).requires_grad_(True)

    # 2. L_val at w' on a functional copy: direct α gradient and v = ∂L_val/∂w'.
    params = {**virtual, **{n: b.clone() for n, b in buffers.items()}}
    loss_v, val_logits = alpha_forward(
        ctx, held, model=lambda x, w=None: functional_call(model, params, (x, w)))
    grads = torch.autograd.grad(loss_v, [*alphas, *virtual.values()])
    d_alpha, v = grads[:len(alphas)], grads[len(alphas):]

    # 3. Finite differences on the training batch at w ± R·v, R = fd_scale/‖v‖.
    r = fd_scale / _grad_norm(v).clamp_min(1e-12)
    saved = [p.detach().clone() for p in weights]

    def alpha_grad_at(sign: float) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            for p, w0, vi in zip(weights, saved, v):
                p.copy_(w0 + sign * r * vi)
        loss, _ = w_forward(ctx, train)
        return torch.autograd.grad(loss, alphas)

    g_plus, g_minus = alpha_grad_at(+1.0), alpha_grad_at(-1.0)
    with torch.no_grad():  # restore w and the BN running statistics exactly
        for p, w0 in zip(weights, saved):
            p.copy_(w0)
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    hyper = [da - xi * (gp - gm) / (2 * r) for da, gp, gm in zip(d_alpha, g_plus, g_minus)]
    return hyper, loss_v.detach(), val_logits.detach()


def bilevel_second_order(ctx: StepContext, train: Batch, held: Batch | None) -> StepStats:
    assert held is not None, "bi-level steps need a held-out batch"
    return _bilevel_step(ctx, train, held, lambda: unrolled_alpha_grads(ctx, train, held))


# --- single level (Single-DARTS) ----------------------------------------------------------------

def single_level(ctx: StepContext, train: Batch, held: Batch | None) -> StepStats:
    if not ctx.update_alpha or ctx.w_step_mixing is not None:
        # Warm-up, or a perturbed w step: α must see the clean mixing, so step them apart.
        stats = weight_step(ctx, train)
        if ctx.update_alpha:
            loss, _ = alpha_forward(ctx, train)
            grads = torch.autograd.grad(loss, ctx.model.arch_parameters())
            stats.alpha_grad_norm = _set_alpha_grads(ctx, grads)
        return stats
    model = ctx.model
    weights, alphas = list(model.weight_parameters()), model.arch_parameters()
    ctx.w_opt.zero_grad(set_to_none=True)
    ctx.a_opt.zero_grad(set_to_none=True)
    out = ctx.task.outputs(model, train)
    task_loss = ctx.task.w_loss(out, train)
    loss = objective(ctx, task_loss, train, ctx.weight_terms, ctx.alpha_terms)
    loss.backward(inputs=[*weights, *alphas])  # one backward: w.grad and α.grad, same batch
    w_norm = _clip(weights, ctx.grad_clip)     # α stays unclipped (as FairDARTS' single level)
    a_norm = _grad_norm([a.grad for a in alphas])
    ctx.w_opt.step()
    ctx.a_opt.step()
    return StepStats(loss.detach(), w_norm, a_norm,
                     train_metrics=ctx.task.batch_metrics(out.detach(), train, "train"))


ALGORITHMS.register("bilevel-1st", Algorithm(
    "bilevel-1st", bilevel_first_order, True,
    "DARTS first order: α on held-out batches, w on training batches (Liu et al. 2019, §2.3)"),
    "DARTS first order (bi-level)")
ALGORITHMS.register("bilevel-2nd", Algorithm(
    "bilevel-2nd", bilevel_second_order, True,
    "DARTS second order: unrolled one-step hypergradient with a finite-difference Hessian-vector "
    "product (Liu et al. 2019, §2.3); ~2-4× the cost of first order"),
    "DARTS second order (bi-level, unrolled)")
ALGORITHMS.register("single", Algorithm(
    "single", single_level, False,
    "Single-DARTS: w and α updated together from one loss on the same training batch "
    "(Hou et al. 2021, arXiv 2108.08128)"),
    "Single-DARTS (single-level)")
