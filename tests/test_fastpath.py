"""The batched supernet forward (fastcell.py) against the per-op reference (issue 7).

For every registered space and update rule the two implementations, loaded with the same
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

from darts_engine import ALGORITHMS, SPACES, ConfigError, SearchConfig
from darts_engine.model.fastcell import (
    MATRIX_MAX_PIXELS,
    darts_cell_supported,
    nb201_cell_supported,
)
from darts_engine.model.spaces import DataShape
from darts_engine.model.supernet import DartsCell, NB201Cell, Supernet
from darts_engine.train.algorithms import StepContext

RTOL = 1e-5
CLASSES = 5
_CELLS = (DartsCell, NB201Cell)


def _pair(space: str, size: int = 8, **options) -> tuple[Supernet, Supernet]:
    """(fast, plain) supernets of one space with identical parameters and buffers."""
    sp = SPACES.get(space)
    cells = 1 if space == "nb201" else 3
    torch.manual_seed(0)
    fast = sp.build(4, cells, DataShape(2, size, CLASSES), seed=0, impl="fast", **options)
    plain = sp.build(4, cells, DataShape(2, size, CLASSES), seed=0, impl="plain", **options)
    plain.load_state_dict(fast.state_dict())
    if not options.get("partial_k"):  # the comparison must exercise the batched forward
        assert all(_runs_fast(c) for c in fast.modules() if isinstance(c, _CELLS))
    return fast, plain


def _runs_fast(cell: DartsCell | NB201Cell) -> bool:
    return cell._fast(darts_cell_supported if isinstance(cell, DartsCell)
                      else nb201_cell_supported)


def _batch(size: int = 8, seed: int = 1, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, size, size, generator=g), torch.randint(0, CLASSES, (n,), generator=g)


def _assert_close(a: torch.Tensor, b: torch.Tensor, scale: float, what: str) -> None:
    """‖a − b‖ <= RTOL·‖b‖, plus a floor for tensors that are pure rounding noise (the
    gradient of a conv bias that a BN right after it cancels is ~1e-9 in both paths)."""
    err = (a.double() - b.double()).norm().item()
    assert err <= RTOL * b.double().norm().item() + 1e-6 * scale, f"{what}: error {err:.3g}"


def _assert_same_state(fast: Supernet, plain: Supernet) -> None:
    """Parameters and buffers (BN running statistics, num_batches_tracked) agree."""
    sf, sp = fast.state_dict(), plain.state_dict()
    assert sf.keys() == sp.keys()
    for k in sp:
        if sp[k].is_floating_point():  # a running mean can be ~1e-9: floor at 1e-6 absolute
            _assert_close(sf[k], sp[k], max(1.0, sp[k].norm().item()), k)
        else:
            assert torch.equal(sf[k], sp[k]), k


def _loss_and_grads(model: Supernet, batch, seed: int = 5) -> tuple[torch.Tensor, list]:
    torch.manual_seed(seed)  # the `noise` op draws from the global RNG
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(batch[0]), batch[1])
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


# Every space at 8×8; the two cell implementations also at an odd size and at 17×17, where the
# first cells take the grouped-conv branch instead of pixel matrices.
CASES = [(space, 8) for space in SPACES.names()] + [
    (space, size) for space in ("darts", "nb201") for size in (7, MATRIX_MAX_PIXELS // 4 + 1)]


@pytest.mark.parametrize(("space", "size"), CASES)
def test_same_loss_gradients_and_bn_statistics(space, size):
    fast, plain = _pair(space, size)
    batch = _batch(size)
    loss_f, grads_f = _loss_and_grads(fast, batch)
    loss_p, grads_p = _loss_and_grads(plain, batch)
    torch.testing.assert_close(loss_f, loss_p, rtol=RTOL, atol=0)
    scale = max(g.norm().item() for g in grads_p if g is not None)
    for (name, _), gf, gp in zip(plain.named_parameters(), grads_f, grads_p):
        assert (gf is None) == (gp is None), name
        if gp is not None:
            _assert_close(gf, gp, scale, name)
    _assert_same_state(fast, plain)  # running statistics after one train-mode forward


def _context(model: Supernet) -> StepContext:
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-3, betas=(0.5, 0.999),
                             weight_decay=1e-3)
    return StepContext(model, w_opt, a_opt, lr=0.05, grad_clip=5.0)


@pytest.mark.parametrize("algorithm", ALGORITHMS.names())
@pytest.mark.parametrize("space", SPACES.names())
def test_three_search_steps_give_the_same_alphas(space, algorithm):
    fast, plain = _pair(space)
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
        _assert_close(fast.alphas[t].detach(), plain.alphas[t].detach(), moved, f"alphas.{t}")
    _assert_same_state(fast, plain)


@pytest.mark.parametrize("space", SPACES.names())
def test_eval_mode_and_explicit_mixing_weights(space):
    fast, plain = _pair(space, 7)
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
            _assert_close(out_f.detach(), out_p.detach(), 0.0, f"train={train}")


@pytest.mark.parametrize("space", SPACES.names())
def test_functional_call_with_virtual_weights(space):
    """As the second-order step uses it: parameters replaced by tensors that are not the
    modules' own, buffers by clones that the forward updates."""
    fast, plain = _pair(space)
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
        _assert_close(gf, gp, scale, name)
    for name, b in buffers[1].items():
        if b.is_floating_point():
            _assert_close(buffers[0][name], b, 1.0, name)
    _assert_same_state(fast, plain)  # the modules' own buffers were not touched


@pytest.mark.parametrize("space", SPACES.names())
def test_double_backward_alpha_hessian_vector_product(space):
    """The λmax indicator differentiates ∇_α L once more (create_graph)."""
    hvps = []
    for model in _pair(space):
        alphas = model.arch_parameters()
        torch.manual_seed(5)  # S4's `noise` op draws from the global RNG
        loss = F.cross_entropy(model(_batch()[0]), _batch()[1])
        g = torch.cat([a.flatten() for a in torch.autograd.grad(loss, alphas, create_graph=True)])
        v = torch.linspace(-1.0, 1.0, g.numel())
        hvps.append(torch.cat([h.flatten() for h in torch.autograd.grad(g @ v, alphas)]))
    _assert_close(hvps[0], hvps[1], hvps[1].norm().item() * 10, "H·v")


@pytest.mark.parametrize("space", SPACES.names())
def test_edge_normalisation_is_supported(space):
    fast, plain = _pair(space, edge_norm=True)
    with torch.no_grad():
        for b in (*fast.betas.values(), *plain.betas.values()):
            b.copy_(torch.linspace(-1.0, 1.0, b.numel()))
    loss_f, loss_p = (_loss_and_grads(m, _batch())[0] for m in (fast, plain))
    torch.testing.assert_close(loss_f, loss_p, rtol=RTOL, atol=0)
    for name, gf, gp in zip(("normal", "reduce", "cell"), fast.betas.values(),
                            plain.betas.values()):
        _assert_close(gf.grad, gp.grad, gp.grad.norm().item(), f"betas.{name}")


def test_partial_channels_fall_back_to_the_reference():
    fast, plain = _pair("darts", partial_k=2)
    assert not any(_runs_fast(c) for c in fast.cells)
    x = _batch()[0]
    assert torch.equal(fast(x), plain(x))


def test_impl_is_a_validated_config_field():
    assert SearchConfig().impl == "fast"
    with pytest.raises(ConfigError) as err:
        SearchConfig(impl="turbo")
    assert err.value.field == "impl"
    fast, _ = _pair("nb201")
    with pytest.raises(ValueError):
        fast.set_impl("turbo")
