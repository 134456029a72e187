"""The batched supernet forward (fastcell.py) against the per-op reference (issue 7).

For every registered cell space and update rule the two implementations, loaded with the same
state_dict, must give the same loss, the same weight and α gradients, the same BN running
statistics and the same α after three search steps (float32; only the summation order differs).
Also: eval mode, explicit mixing weights, odd and larger maps (the grouped-conv branch),
torch.func.functional_call, double backward, edge normalisation and the PC-DARTS fallback.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from darts_engine import ALGORITHMS, TASKS, ConfigError, SearchConfig
from darts_engine.methods.pcdarts import partial_channels
from darts_engine.model.fastcell import (
    MATRIX_MAX_PIXELS,
)
from darts_engine.model.supernet import DartsCell, NB201Cell, Supernet
from darts_engine.train.algorithms import StepContext
from tests.helpers import (
    assert_close,
    assert_same_state,
    cell_spaces,
    fast_and_plain,
    loss_and_grads,
    runs_fast,
)

RTOL = 1e-5
CLASSES = 5
_CELLS = (DartsCell, NB201Cell)


def _batch(size: int = 8, seed: int = 1, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, size, size, generator=g), torch.randint(0, CLASSES, (n,), generator=g)


# Every space at 8×8; the two cell implementations also at an odd size and at 17×17, where the
# first cells take the grouped-conv branch instead of pixel matrices.
CASES = [(space, 8) for space in cell_spaces()] + [
    (space, size) for space in ("darts", "nb201") for size in (7, MATRIX_MAX_PIXELS // 4 + 1)]


@pytest.mark.parametrize(("space", "size"), CASES)
def test_same_loss_gradients_and_bn_statistics(space, size):
    fast, plain = fast_and_plain(space, size)
    batch = _batch(size)
    loss_f, grads_f = loss_and_grads(fast, batch)
    loss_p, grads_p = loss_and_grads(plain, batch)
    torch.testing.assert_close(loss_f, loss_p, rtol=RTOL, atol=0)
    scale = max(g.norm().item() for g in grads_p if g is not None)
    for (name, _), gf, gp in zip(plain.named_parameters(), grads_f, grads_p):
        assert (gf is None) == (gp is None), name
        if gp is not None:
            assert_close(gf, gp, scale, name)
    assert_same_state(fast, plain)  # running statistics after one train-mode forward


def _context(model: Supernet) -> StepContext:
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-3, betas=(0.5, 0.999),
                             weight_decay=1e-3)
    return StepContext(model, w_opt, a_opt, lr=0.05, grad_clip=5.0,
                       task=TASKS.get("classification"))


@pytest.mark.parametrize("algorithm", ALGORITHMS.names())
@pytest.mark.parametrize("space", cell_spaces())
def test_three_search_steps_give_the_same_alphas(space, algorithm):
    fast, plain = fast_and_plain(space)
    start = {t: a.detach().clone() for t, a in plain.alphas.items()}
    algo = ALGORITHMS.get(algorithm)
    batches = [(_batch(seed=2 * k), _batch(seed=2 * k + 1)) for k in range(3)]
    for model in (fast, plain):
        ctx = _context(model)
        torch.manual_seed(7)
        for train, held in batches:
            algo.step(ctx, train, held if algo.uses_held_out else None)
    for t in fast.alphas:
        moved = (plain.alphas[t] - start[t]).norm().item()
        assert moved > 1e-3  # α did move
        assert_close(fast.alphas[t].detach(), plain.alphas[t].detach(), moved, f"alphas.{t}")
    assert_same_state(fast, plain)


@pytest.mark.parametrize("space", cell_spaces())
def test_eval_mode_and_explicit_mixing_weights(space):
    fast, plain = fast_and_plain(space, 7)
    x = _batch(7)[0]
    g = torch.Generator().manual_seed(3)
    one_hot = {t: F.one_hot(torch.randint(0, a.shape[1], (a.shape[0],), generator=g),
                            a.shape[1]).float() for t, a in plain.alphas.items()}
    perturbed = {t: torch.softmax(torch.randn(a.shape, generator=g), -1)
                 for t, a in plain.alphas.items()}
    for weights in (None, one_hot, perturbed):
        for train in (True, False):
            fast.train(train)
            plain.train(train)
            torch.manual_seed(5)
            out_p = plain(x, weights)
            torch.manual_seed(5)
            out_f = fast(x, weights)
            assert_close(out_f.detach(), out_p.detach(), 0.0, f"train={train}")


@pytest.mark.parametrize("space", cell_spaces())
def test_functional_call_with_virtual_weights(space):
    """As the second-order step uses it: parameters replaced by tensors that are not the
    modules' own, buffers by clones that the forward updates."""
    fast, plain = fast_and_plain(space)
    x, y = _batch()
    grads, buffers = [], []
    for model in (fast, plain):
        virtual = {n: (p.detach() * 1.1).requires_grad_() for n, p in model.named_parameters()}
        bufs = {n: b.clone() for n, b in model.named_buffers()}
        torch.manual_seed(5)  # S4's `noise` op draws from the global RNG
        loss = F.cross_entropy(functional_call(model, {**virtual, **bufs}, (x,)), y)
        grads.append(torch.autograd.grad(loss, list(virtual.values())))
        buffers.append(bufs)
    scale = max(g.norm().item() for g in grads[1])
    for (name, _), gf, gp in zip(plain.named_parameters(), *grads):
        assert_close(gf, gp, scale, name)
    for name, b in buffers[1].items():
        if b.is_floating_point():
            assert_close(buffers[0][name], b, 1.0, name)
    assert_same_state(fast, plain)  # the modules' own buffers were not touched


@pytest.mark.parametrize("space", cell_spaces())
def test_double_backward_alpha_hessian_vector_product(space):
    """The λmax indicator differentiates ∇_α L once more (create_graph)."""
    hvps = []
    for model in fast_and_plain(space):
        alphas = model.arch_parameters()
        torch.manual_seed(5)  # S4's `noise` op draws from the global RNG
        loss = F.cross_entropy(model(_batch()[0]), _batch()[1])
        g = torch.cat([a.flatten() for a in torch.autograd.grad(loss, alphas, create_graph=True)])
        v = torch.linspace(-1.0, 1.0, g.numel())
        hvps.append(torch.cat([h.flatten() for h in torch.autograd.grad(g @ v, alphas)]))
    assert_close(hvps[0], hvps[1], hvps[1].norm().item() * 10, "H·v")


@pytest.mark.parametrize("space", cell_spaces())
def test_edge_normalisation_is_supported(space):
    fast, plain = fast_and_plain(space, edge_norm=True)
    with torch.no_grad():
        for b in (*fast.betas.values(), *plain.betas.values()):
            b.copy_(torch.linspace(-1.0, 1.0, b.numel()))
    loss_f, loss_p = (loss_and_grads(m, _batch())[0] for m in (fast, plain))
    torch.testing.assert_close(loss_f, loss_p, rtol=RTOL, atol=0)
    for name, gf, gp in zip(("normal", "reduce", "cell"), fast.betas.values(),
                            plain.betas.values()):
        assert_close(gf.grad, gp.grad, gp.grad.norm().item(), f"betas.{name}")


def test_partial_channels_fall_back_to_the_reference():
    fast, plain = fast_and_plain("darts", mixed_op=partial_channels(2))
    assert not any(runs_fast(c) for c in fast.cells)
    x = _batch()[0]
    assert torch.equal(fast(x), plain(x))


def test_impl_is_a_validated_config_field():
    assert SearchConfig().impl == "fast"
    with pytest.raises(ConfigError) as err:
        SearchConfig(impl="turbo")
    assert err.value.field == "impl"
    fast, _ = fast_and_plain("nb201")
    with pytest.raises(ValueError):
        fast.set_impl("turbo")
