"""Probes that need the model, for the indicators measured every k epochs (indicators.py).

- λmax: the dominant eigenvalue of ∇²_α L_val (RobustDARTS, Zela et al. 2020, §4; its code
  computes the full Hessian in src/search/analyze.py) from Hessian-vector products (power
  iteration's Krylov space, Lanczos), or exactly from the full Hessian when α is small (NB201:
  30 entries).
- The discretisation gap (the gap SDARTS, Chen & Hsieh 2020, and FairDARTS, Chu et al. 2020,
  set out to shrink): the accuracy of the discretised network with inherited weights, after
  BN recalibration. The model's buffers, BN momenta and mode are restored around each probe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..model.genotype import Genotype
from ..model.spaces import SearchSpace, discrete_weights

if TYPE_CHECKING:
    from ..model.supernet import Supernet

Batch = tuple[torch.Tensor, torch.Tensor]
EXACT_HESSIAN_MAX = 32           # α entries up to which the full Hessian is cheaper and exact


# --- Hessian of the validation loss w.r.t. α (RobustDARTS) ----------------------------------

Hvp = Callable[[torch.Tensor], torch.Tensor]  # v (n,) -> H v (n,), float64


def top_eigenvalue(hvp: Hvp, n: int, iters: int = 20, seed: int = 0) -> float:
    """Largest (algebraic) eigenvalue of a symmetric n×n operator known by its products.

    Power iteration with the bookkeeping kept: the same `iters` products H·v, H²·v, ... span a
    Krylov subspace, and the top eigenvalue of H restricted to it (Lanczos, with full
    re-orthogonalisation) is never below the power iterate's Rayleigh quotient. It converges
    much faster when the top eigenvalues are close, and it finds the algebraic maximum even
    when a negative eigenvalue has the larger magnitude. With iters >= n it is exact.
    """
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=gen, dtype=torch.float64)
    basis = [v / v.norm()]
    diag: list[float] = []
    off: list[float] = []
    for _ in range(min(iters, n)):
        w = hvp(basis[-1])
        diag.append(float(w @ basis[-1]))
        q = torch.stack(basis)                     # (k, n) orthonormal
        w = w - q.T @ (q @ w)
        w = w - q.T @ (q @ w)                      # twice is enough in float64
        norm = float(w.norm())
        if norm <= 1e-10 * max(1.0, max(abs(d) for d in diag)):
            break                                  # invariant subspace found: exact
        off.append(norm)
        basis.append(w / norm)
    k = len(diag)
    t = np.diag(diag) + np.diag(off[:k - 1], 1) + np.diag(off[:k - 1], -1)  # (k, k) tridiagonal
    return float(np.linalg.eigvalsh(t).max())


def full_hessian(hvp: Hvp, n: int) -> np.ndarray:
    """The n×n matrix from n products with unit vectors, symmetrised."""
    eye = torch.eye(n, dtype=torch.float64)
    h = torch.stack([hvp(eye[i]) for i in range(n)]).numpy()
    return 0.5 * (h + h.T)


def alpha_hvp(model: Supernet, batches: Sequence[Batch], cell_types: Sequence[str],
              weight_decay: float) -> tuple[Hvp, int]:
    """H·v for H = ∇²_α mean_b L(b) + weight_decay·I (Adam's α L2 term, as in RobustDARTS).

    One forward and first backward with create_graph, kept for every product. The model is
    used as it is (train mode: BN on batch statistics, as RobustDARTS); the caller restores BN
    buffers. In S1 only the α of the ops each edge has count (56 of 168, as RobustDARTS' own
    (edges, 2) α): the others have no gradient and would only add eigenvalues = weight_decay.
    """
    types = [t for t in cell_types if model.alphas[t].requires_grad]
    alphas = [model.alphas[t] for t in types]
    masks = model.op_masks()
    loss = sum(F.cross_entropy(model(x), y) for x, y in batches) / len(batches)
    grads = torch.autograd.grad(loss, alphas, create_graph=True)
    g = torch.cat([gr.reshape(-1) for gr in grads])          # (n,) with its graph
    keep = None if masks is None else torch.cat([masks[t].reshape(-1) for t in types])
    if keep is not None:
        g = g[keep]
    n = g.numel()

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(g @ v.to(g), alphas, retain_graph=True)
        hv = torch.cat([h.reshape(-1) for h in hv])
        return (hv if keep is None else hv[keep]).double().cpu() + weight_decay * v

    return hvp, n


def hessian_eigenvalue(model: Supernet, batches: Sequence[Batch], cell_types: Sequence[str],
                       weight_decay: float, exact_max: int = EXACT_HESSIAN_MAX) -> float:
    """λmax of the validation-loss Hessian in α on fixed batches; BN buffers and the model's
    train/eval mode are restored, no .grad is touched. NaN when no α is being searched."""
    if not any(model.alphas[t].requires_grad for t in cell_types):
        return float("nan")
    with _preserved(model):
        model.train()
        hvp, n = alpha_hvp(model, batches, cell_types, weight_decay)
        if n <= exact_max:
            return float(np.linalg.eigvalsh(full_hessian(hvp, n)).max())
        return top_eigenvalue(hvp, n)


# --- discretisation gap ----------------------------------------------------------------------

class _preserved:
    """Restore a model's buffers (BN running statistics), BN momenta and train/eval mode."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.training = self.model.training
        self.buffers = {n: b.detach().clone() for n, b in self.model.named_buffers()}
        self.momenta = {m: m.momentum for m in self.model.modules()
                        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for n, b in self.model.named_buffers():
                b.copy_(self.buffers[n])
        for m, momentum in self.momenta.items():
            m.momentum = momentum
        self.model.train(self.training)


@torch.no_grad()
def recalibrate_bn(model: Supernet, batches: Iterable[Batch],
                   weights: Mapping[str, torch.Tensor] | None = None) -> None:
    """Recompute BN running statistics from scratch as an exact average over `batches`."""
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in bns:
        m.reset_running_stats()
    model.train()
    for k, (x, _) in enumerate(batches):
        for m in bns:  # momentum 1/(k+1): the running value is the mean over batches so far
            m.momentum = 1.0 / (k + 1)
        model(x, weights)


@torch.no_grad()
def accuracy(model: Supernet, batches: Iterable[Batch],
             weights: Mapping[str, torch.Tensor] | None = None) -> float:
    model.eval()
    correct, n = 0.0, 0
    for x, y in batches:
        correct += float((model(x, weights).argmax(1) == y).sum())
        n += len(y)
    return correct / max(n, 1)


def discrete_accuracy(model: Supernet, g: Genotype, space: SearchSpace,
                      calibration: Iterable[Batch], evaluation: Iterable[Batch]) -> float:
    """Accuracy of the discretised network with inherited weights after BN recalibration on
    `calibration` batches. The model's BN statistics, momenta and mode are restored."""
    device = next(model.parameters()).device
    weights = {t: torch.tensor(w, dtype=torch.float32, device=device)
               for t, w in discrete_weights(g, space).items()}
    with torch.no_grad():  # PC-DARTS scales each edge by its β weight: cancel it on kept edges
        for t, edge_w in (model.edge_weights() or {}).items():
            weights[t] = weights[t] / edge_w[:, None]
    with _preserved(model):
        recalibrate_bn(model, calibration, weights)
        return accuracy(model, evaluation, weights)
