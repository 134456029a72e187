"""Continuous relaxations of each edge's op choice, registered by name (config `relaxation`).

A relaxation maps one edge's raw α (last axis: ops) to mixing weights on the simplex.
- `softmax` (DARTS: Liu, Simonyan & Yang 2019, §2.2 eq. 2; quark0/darts cnn/model_search.py
  MixedOp with `F.softmax(alphas, dim=-1)`): every op keeps a positive weight.
- `sparsemax` (Martins & Astudillo, ICML 2016, "From Softmax to Sparsemax", §2): the
  Euclidean projection of α onto the simplex, so weak ops get exactly zero weight and drop
  out of the gradient. It is piecewise linear: sparsemax(z)_i = max(z_i − τ(z), 0), with τ
  chosen so that the weights sum to 1.

The relaxation is orthogonal to the update rule and the method: `Supernet.mixing_weights()`
applies it, and the genotype is derived from the same weights. Each entry has a torch version
(the supernet, differentiable) and a NumPy version (derivation from stored α).

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
    name: str
    torch: Callable[[torch.Tensor], torch.Tensor]   # over the last axis
    numpy: Callable[[np.ndarray], np.ndarray]       # over the last axis, float64


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


def get_relaxation(name: str) -> Relaxation:
    return RELAXATIONS.get(name)
