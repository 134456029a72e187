"""Continuous relaxations of each edge's op choice, registered by name (config `relaxation`).

A relaxation maps one edge's raw α (last axis: ops) to mixing weights on the simplex.
- `softmax` (DARTS: Liu, Simonyan & Yang 2019, §2.2 eq. 2; quark0/darts cnn/model_search.py
  MixedOp with `F.softmax(alphas, dim=-1)`): every op keeps a positive weight.
- `sparsemax` (Martins & Astudillo, ICML 2016, "From Softmax to Sparsemax", §2): the
  Euclidean projection of α onto the simplex, so weak ops get exactly zero weight and drop
  out of the gradient. It is piecewise linear: sparsemax(z)_i = max(z_i − τ(z), 0), with τ
  chosen so that the weights sum to 1.
- `sparsestmax` (Shao et al., CVPR 2019, "SSN: Learning Sparse Switchable Normalization via
  SparsestMax", §3; used for the architecture weights by Wu et al. 2021, "Trilevel Neural
  Architecture Search for Efficient Single Image Super-Resolution", arXiv 2101.06658 §3):
  sparsemax pushed out to a sphere of radius r around the centre of its support, so the
  weights are forced apart as r grows and are one-hot once r ≥ √((K−1)/K). r follows training
  progress (`Relaxation.radius`), which is what lets search and training be one phase.

The relaxation is orthogonal to the update rule and the method: `Supernet.mixing_weights()`
applies it, and the genotype is derived from the same weights. Each entry has a torch version
(the supernet, differentiable) and a NumPy version (derivation from stored α). A relaxation
with a `radius` schedule reads the search progress (0 at the start, 1 at the end); both
versions default to progress 1, the weights the finished search ends with.

Under sparsemax an op at exactly zero gets no gradient from the loss (only Adam's weight decay
moves its α), and in the DARTS rule two edges whose non-`none` weights are all zero tie at
strength 0 (the lower input index wins, as for any tie).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..registries import RELAXATIONS
from .genotype import softmax as np_softmax


@dataclass(frozen=True)
class Relaxation:
    """One relaxation: `torch_fn` / `numpy_fn` map z (…, ops) to weights over the last axis;
    with a `radius` schedule they also take the radius, r = radius(progress)."""

    name: str
    torch_fn: Callable[..., torch.Tensor]
    numpy_fn: Callable[..., np.ndarray]      # float64
    radius: Callable[[float], float] | None = None

    @property
    def uses_progress(self) -> bool:
        return self.radius is not None

    def torch(self, z: torch.Tensor, progress: float = 1.0) -> torch.Tensor:
        """Mixing weights over the last axis at this search progress (ignored without a
        schedule)."""
        if self.radius is None:
            return self.torch_fn(z)
        return self.torch_fn(z, self.radius(progress))

    def numpy(self, z: np.ndarray, progress: float = 1.0) -> np.ndarray:
        """The same in float64, for stored α; progress 1 (the default) is what derivation uses."""
        if self.radius is None:
            return self.numpy_fn(z)
        return self.numpy_fn(z, self.radius(progress))


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Sparsemax over the last axis. Autograd through sort/gather gives its exact Jacobian
    (δ_ij − 1/|S| on the support S, 0 elsewhere)."""
    n = z.shape[-1]
    z_sorted = torch.sort(z, dim=-1, descending=True).values
    k = torch.arange(1, n + 1, device=z.device, dtype=z.dtype)
    cumsum = z_sorted.cumsum(dim=-1) - 1                        # Σ_{j≤k} z_(j) − 1
    support = (k * z_sorted > cumsum).sum(dim=-1, keepdim=True)  # |S| ≥ 1 always
    tau = cumsum.gather(-1, support - 1) / support.to(z.dtype)
    return torch.clamp(z - tau, min=0)


def sparsemax_np(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z_sorted = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cumsum = z_sorted.cumsum(axis=-1) - 1
    support = (k * z_sorted > cumsum).sum(axis=-1, keepdims=True)
    tau = np.take_along_axis(cumsum, support - 1, axis=-1) / support
    return np.maximum(z - tau, 0.0)


def sparsestmax_radius(progress: float) -> float:
    """The sphere's radius at this search progress: r = progress, growing linearly from 0
    (plain sparsemax) at the start to 1 at the end, stepped per iteration as in
    switchablenorms/Sparse_SwitchNorm train_imagenet.py `train` ("update radius for SSN") and
    hanyao8/DA-NAS-SISR train_search.py `train` (rad = step / total steps).

    Not linear-to-one-hot: r reaches an edge's one-hot radius √((K−1)/K) before the end (at
    progress 0.87 with 4 ops, 0.89 with 5, 0.94 with 8), so the last stretch of the search
    already trains the discrete network, and every K is one-hot at progress 1."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1] (0 = start of search, 1 = end), "
                         f"got {progress}")
    return float(progress)


def _tie_tol(dtype: torch.dtype | np.dtype) -> float:
    # below this distance from u the weights count as tied (rounding of sparsemax's τ)
    eps = torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) else np.finfo(dtype).eps
    return 100 * float(eps)


def sparsestmax(z: torch.Tensor, r: float | torch.Tensor) -> torch.Tensor:
    """Sparsestmax over the last axis (Shao et al. 2019, §3; Sparse_SwitchNorm
    utils/ssn_utils.py `sparsestmax`), batched over the leading axes; r: a float or one radius
    per row. −inf entries (ops an edge lacks) get weight exactly 0.

    p = sparsemax(z); u = uniform over the support S of p. If ‖p − u‖ < r, p moves out to the
    sphere, p ← u + r (p − u)/‖p − u‖ (the sum stays 1). If a coordinate goes negative, p is
    projected onto the simplex (sparsemax again, which drops it from S) and the walk repeats on
    the smaller face, with u the new face's centre and r² reduced by ‖u' − u‖² = 1/|S'| − 1/|S|
    (the circle where the sphere cuts that face), as the reference's recursion does. The radius
    carries no gradient; the walk's steps are differentiable almost everywhere.

    r² + 1/|S| is unchanged by every shrink, so at r² + 1/|S| ≥ 1 (r ≥ √((K−1)/K) reaches it for
    any support) the walk ends on a vertex; that vertex is the largest weight (each step keeps
    the weights' order), and it is returned directly, exactly one-hot (within a rounding margin
    of 100 eps on r²). Ties, p = u (all-equal α, or two equal leaders once the rest dropped):
    the reference adds 1e-20 to the distance and stays at u, never one-hot; here p moves toward
    the first op of the support in column order, the lower-index-wins rule genotypes use."""
    p = sparsemax(z)                                             # (…, K)
    k = p.shape[-1]
    tol = _tie_tol(p.dtype)
    rsq = torch.as_tensor(r, dtype=p.dtype, device=p.device).detach().square()
    rsq = rsq.expand(p.shape[:-1]).clone()                       # (…,) r² per row
    support = p > 0                                              # (…, K) S
    m = support.sum(-1).to(p.dtype)                              # (…,) |S| ≥ 1
    at_vertex = rsq + 1 / m >= 1 - tol
    one_hot = torch.zeros_like(p).scatter_(-1, p.argmax(-1, keepdim=True), 1.0)
    active = ~at_vertex
    for _ in range(k):                                           # S shrinks on every repeat
        if not bool(active.any()):
            break
        u = support / m[..., None]
        d = torch.where(support, p - u, 0.0)
        d = torch.where(support, d - d.sum(-1, keepdim=True) / m[..., None], 0.0)  # Σ d = 0
        dist = torch.linalg.vector_norm(d, dim=-1)
        tie = dist <= tol
        first = support.to(torch.uint8).argmax(-1, keepdim=True)  # the first op in S
        toward = torch.zeros_like(p).scatter_(-1, first, 1.0) - u
        d = torch.where(tie[..., None], toward, d)
        length = torch.where(tie, (1 - 1 / m).sqrt().clamp(min=tol), dist)  # ‖d‖
        radius = rsq.sqrt()
        move = active & (dist < radius)
        q = u + (radius / length)[..., None] * d
        out = move & (q < 0).any(-1)
        p = torch.where(move[..., None], q, p)
        if bool(out.any()):
            p = torch.where(out[..., None], sparsemax(p), p)
            shrunk = torch.where(out[..., None], p > 0, support)
            m_new = shrunk.sum(-1).to(p.dtype)
            rsq = torch.where(out, (rsq - (1 / m_new - 1 / m)).clamp(min=0), rsq)
            support, m = shrunk, m_new
        active = out
    return torch.where(at_vertex[..., None], one_hot, p).clamp(min=0)


def sparsestmax_np(z: np.ndarray, r: float | np.ndarray) -> np.ndarray:
    """`sparsestmax` in float64 with NumPy, row by row (same walk, same tie rule)."""
    z = np.asarray(z, dtype=np.float64)
    p = sparsemax_np(z).reshape(-1, z.shape[-1])
    radii = np.broadcast_to(np.asarray(r, dtype=np.float64), z.shape[:-1]).reshape(-1)
    return np.stack([_sparsestmax_row(row, rad) for row, rad in zip(p, radii)]).reshape(z.shape)


def _sparsestmax_row(p: np.ndarray, r: float) -> np.ndarray:
    tol = _tie_tol(np.dtype(np.float64))
    support = p > 0
    m = int(support.sum())
    rsq = float(r) ** 2
    if rsq + 1 / m >= 1 - tol:
        return np.eye(p.size)[int(np.argmax(p))]
    while True:
        u = support / m
        d = np.where(support, p - u, 0.0)
        d = np.where(support, d - d.sum() / m, 0.0)
        dist = length = float(np.linalg.norm(d))
        if dist <= tol:
            d = -u
            d[int(np.argmax(support))] += 1.0
            length = np.sqrt(1 - 1 / m)
        if dist >= np.sqrt(rsq):
            return p
        q = u + np.sqrt(rsq) / length * d
        if q.min() >= 0:
            return q
        p = sparsemax_np(q)
        shrunk = p > 0
        m_new = int(shrunk.sum())
        rsq = max(rsq - (1 / m_new - 1 / m), 0.0)
        support, m = shrunk, m_new


def _torch_softmax(a: torch.Tensor) -> torch.Tensor:
    return torch.softmax(a, dim=-1)


RELAXATIONS.register("softmax", Relaxation("softmax", _torch_softmax, np_softmax),
                     "softmax over each edge's α (DARTS, Liu, Simonyan & Yang 2019, §2.2 eq. 2): "
                     "every op keeps some weight, so the supernet relies on a mixture that the "
                     "derived cell (one op per edge) drops")
RELAXATIONS.register("sparsemax", Relaxation("sparsemax", sparsemax, sparsemax_np),
                     "sparsemax over each edge's α (Martins & Astudillo 2016, §2): the "
                     "projection onto the simplex, so weak ops get exactly zero weight and stop "
                     "receiving gradient; an edge with one op left has decided")
RELAXATIONS.register("sparsestmax",
                     Relaxation("sparsestmax", sparsestmax, sparsestmax_np, sparsestmax_radius),
                     "sparsemax pushed out to a sphere of radius r around the centre of the "
                     "surviving ops (Shao et al. 2019, SSN, §3), r growing from 0 to 1 with the "
                     "search's progress: it starts as sparsemax and ends one-hot on every edge "
                     "(once r ≥ √((K−1)/K)), so the last part of the search already trains the "
                     "discrete network and no separate retraining phase is needed (Wu et al. "
                     "2021, trilevel NAS for super-resolution, arXiv 2101.06658 §3)")


def get_relaxation(name: str) -> Relaxation:
    return RELAXATIONS.get(name)
