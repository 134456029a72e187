"""sparsestmax (Shao et al. 2019, SSN §3) and its radius schedule: simplex, sparsemax at r = 0,
one-hot at r ≥ √((K−1)/K), the sphere around the support's centre, gradients, the NumPy twin
and the reference's recursion, and the supernet reading its progress."""

import math

import numpy as np
import pytest
import torch

from darts_engine.model.relaxations import (
    get_relaxation,
    sparsemax,
    sparsemax_np,
    sparsestmax,
    sparsestmax_np,
    sparsestmax_radius,
)
from darts_engine.model.spaces import DataShape, get_space


def _random_logits(rng: np.random.Generator, shape: tuple[int, ...], masked: bool) -> np.ndarray:
    """Logits at a few scales; with `masked`, some entries −inf (every row keeps ≥ 1 op)."""
    z = rng.standard_normal(shape) * rng.choice([1e-3, 0.1, 1.0, 3.0])
    if masked:
        drop = rng.random(shape) < 0.4
        drop[drop.all(-1), rng.integers(shape[-1])] = False
        z = np.where(drop, -np.inf, z)
    return z


def _reference_sparsestmax(v: np.ndarray, rad: float, u_in: np.ndarray | None = None) -> np.ndarray:
    """Sparse_SwitchNorm utils/ssn_utils.py `sparsestmax` on one row, transcribed literally:
    recursion, ‖u − u_in‖² computed, 1e-20 on the distance (no tie rule, no vertex shortcut)."""
    w = sparsemax_np(v)
    if w.max() - w.min() == 1:
        return w
    ind = (w > 0).astype(np.float64)
    u = ind / ind.sum()
    if u_in is not None:
        rad = math.sqrt(max(rad ** 2 - float(((u - u_in) ** 2).sum()), 0.0))
    distance = float(np.linalg.norm(w - u))
    if distance >= rad:
        return w
    p = rad * (w - u) / (distance + 1e-20) + u
    if p.min() < 0:
        return _reference_sparsestmax(p, rad, u)
    return np.clip(p, 0, 1)


SHAPES = [(1,), (5,), (3, 4), (14, 8), (2, 3, 5), (6, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_on_the_simplex_with_masked_ops_exactly_zero(shape, masked):
    rng = np.random.default_rng(hash((shape, masked)) % 2**32)
    for _ in range(20):
        z = _random_logits(rng, shape, masked)
        r = rng.uniform(0, 1.2, size=shape[:-1])
        for w in (sparsestmax(torch.tensor(z), torch.tensor(r)).numpy(), sparsestmax_np(z, r)):
            assert (w >= 0).all()
            np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
            assert (w[np.isneginf(z)] == 0).all()
    w32 = sparsestmax(torch.tensor(z, dtype=torch.float32), 0.4)
    assert (w32 >= 0).all() and torch.allclose(w32.sum(-1), torch.ones(()), atol=1e-5)


def test_equals_sparsemax_at_radius_zero():
    rng = np.random.default_rng(1)
    z = torch.tensor(_random_logits(rng, (40, 6), masked=True))
    assert torch.equal(sparsestmax(z, 0.0), sparsemax(z))
    np.testing.assert_array_equal(sparsestmax_np(z.numpy(), 0.0), sparsemax_np(z.numpy()))


@pytest.mark.parametrize("k", [2, 3, 4, 5, 8])
def test_one_hot_from_the_vertex_radius_on(k):
    rng = np.random.default_rng(k)
    z = _random_logits(rng, (30, k + 2), masked=False)
    z[:, k:] = -np.inf                                       # K = k available ops per row
    r_max = math.sqrt((k - 1) / k)
    for r in (r_max, r_max + 1e-9, 0.99, 1.0):
        expected = np.eye(k + 2)[np.argmax(z, -1)]
        np.testing.assert_array_equal(sparsestmax(torch.tensor(z), r).numpy(), expected)
        np.testing.assert_array_equal(sparsestmax_np(z, r), expected)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_just_below_the_vertex_radius_all_equal_logits_are_not_one_hot(k):
    # All-equal α: p = u, the tie moves toward op 0 along e_0 − u (‖e_0 − u‖ = r_max), so at
    # r < r_max the others keep (1/K)(1 − r/r_max), by hand.
    r_max = math.sqrt((k - 1) / k)
    r = r_max - 1e-3
    z = np.full((1, k), 0.7)
    others = (1 / k) * (1 - r / r_max)
    expected = np.array([[1 - (k - 1) * others] + [others] * (k - 1)])
    np.testing.assert_allclose(sparsestmax(torch.tensor(z), r).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(sparsestmax_np(z, r), expected, atol=1e-12)
    assert not np.isnan(sparsestmax(torch.tensor(z), 0.5).numpy()).any()


def test_lies_on_the_sphere_around_the_support_centre():
    # Whenever sparsemax is nearer than r to u (the centre of its support) and the walk does not
    # end on a vertex, the result is at distance exactly r from u: inside the simplex it is the
    # radial point (same direction as sparsemax − u); after shrinking to a face S' it is on the
    # circle of radius r' around u', and ‖w − u‖² = r'² + ‖u' − u‖² = r² (Pythagoras).
    rng = np.random.default_rng(2)
    checked = inside = 0
    for _ in range(300):
        k = int(rng.integers(2, 9))
        z = rng.standard_normal(k) * rng.choice([0.05, 0.3, 1.0])
        r = float(rng.uniform(0.01, 1.0))
        p = sparsemax_np(z)
        s = p > 0
        u = s / s.sum()
        if np.linalg.norm(p - u) >= r or r * r + 1 / s.sum() >= 1:
            continue
        w = sparsestmax(torch.tensor(z), r).numpy()
        assert np.linalg.norm(w - u) == pytest.approx(r, abs=1e-10)
        checked += 1
        if ((w > 0) == s).all():
            cos = np.dot(w - u, p - u) / (np.linalg.norm(w - u) * np.linalg.norm(p - u))
            assert cos == pytest.approx(1.0, abs=1e-10)
            inside += 1
    assert checked > 100 and 20 < inside < checked


def test_agrees_with_the_reference_recursion_and_numpy():
    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(2, 9))
        z = rng.standard_normal(k) * rng.choice([0.05, 0.3, 1.0])
        r = float(rng.uniform(0, 1))
        got = sparsestmax(torch.tensor(z), r).numpy()
        np.testing.assert_allclose(got, _reference_sparsestmax(z, r), atol=1e-9)
        np.testing.assert_allclose(sparsestmax_np(z, r), got, atol=1e-12)


def test_gradients_exact_and_finite_with_masked_ops():
    # generic points: one where the sphere stays inside the simplex, one where the support shrinks
    inside = torch.tensor([[0.31, 0.2, 0.27, 0.25], [0.1, 0.14, 0.05, 0.12]], dtype=torch.float64)
    shrink = torch.tensor([[1.0, 0.6, 0.45, 0.1, -0.3]], dtype=torch.float64)
    assert (sparsestmax(inside, 0.1) > 0).all()
    w = sparsestmax(shrink, 0.6)
    assert (w > 0).sum() < (sparsemax(shrink) > 0).sum()
    for z, r in ((inside, 0.1), (shrink, 0.6)):
        assert torch.autograd.gradcheck(lambda x, r=r: sparsestmax(x, r),
                                        (z.clone().requires_grad_(),))
    z = torch.tensor([[0.3, -math.inf, 0.1, 0.2], [0.5, 0.5, -math.inf, 0.5]],
                     dtype=torch.float64, requires_grad=True)
    (sparsestmax(z, 0.3) * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)).sum().backward()
    assert torch.isfinite(z.grad).all()
    assert z.grad[0, 1] == 0 and z.grad[1, 2] == 0
    assert z.grad[0].abs().sum() > 0


def test_registered_with_a_radius_that_grows_with_progress():
    relax = get_relaxation("sparsestmax")
    assert relax.uses_progress and not get_relaxation("sparsemax").uses_progress
    assert [sparsestmax_radius(p) for p in (0.0, 0.25, 1.0)] == [0.0, 0.25, 1.0]
    with pytest.raises(ValueError, match="progress"):
        sparsestmax_radius(1.5)
    z = np.random.default_rng(4).standard_normal((6, 5))
    np.testing.assert_array_equal(relax.numpy(z), sparsestmax_np(z, 1.0))   # derivation: the end
    np.testing.assert_array_equal(relax.numpy(z, 0.0), sparsemax_np(z))
    space = get_space("nb201")
    alphas = {t: z for t in space.cell_types}
    assert space.derive(alphas, relaxation="sparsestmax") == space.derive(alphas)


def test_supernet_mixing_weights_follow_its_progress():
    model = get_space("nb201").build(4, 1, DataShape(3, 8, 4), seed=0, relaxation="sparsestmax")
    assert model.progress == 1.0
    with torch.no_grad():
        for a in model.alphas.values():
            a.copy_(0.2 * torch.randn(a.shape, generator=torch.Generator().manual_seed(5)))
    by_progress = {}
    for p in (0.0, 0.3, 0.6, 1.0):
        model.progress = p
        by_progress[p] = {t: w.detach().clone() for t, w in model.mixing_weights().items()}
    for t, a in model.alphas.items():
        assert torch.equal(by_progress[0.0][t], sparsemax(a.detach()))
        assert not torch.allclose(by_progress[0.3][t], by_progress[0.0][t])
        assert not torch.allclose(by_progress[0.6][t], by_progress[0.3][t])
        assert ((by_progress[1.0][t] == 1).sum(-1) == 1).all()
    model.progress = 0.3
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert all(torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
               for a in model.alphas.values())
