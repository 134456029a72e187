"""PC-DARTS (Xu et al., ICLR 2020; yuhuixu1993/PC-DARTS) as a method.

- Partial channel connections (their model_search.py `MixedOp`, `channel_shuffle`): every
  MixedOp runs its ops on the first C/K channels (K = `pc_k`); the rest bypass them (2×2
  max-pooled on reduction edges); then a K-group channel shuffle. `PartialMixedOp` below, which
  the supernet builds every edge with (`mixed_op`, model/supernet.py).
- Edge normalisation (model_search.py `Network.forward`, `betas_normal` / `betas_reduce`): β,
  one logit per edge and cell type, registered next to α (so the Adam optimiser and checkpoints
  see it and SGD never does); node i = Σ_j softmax_i(β)_j · MixedOp_ij(h_j).
  `Supernet.edge_weights()`.
- Derivation (model_search.py `Network.genotype`) from softmax(α)·softmax(β): the loop passes
  β to `SearchSpace.derive` whenever the model has it.
- Warm-up (train_search.py `train`: `if epoch >= 15: architect.step(...)`): the general
  `warmup_epochs` (w only, no α/β steps); the preset sets 15.

The reference is `bilevel-1st` (α step, then w step); `single` and `bilevel-2nd` also work since
β is just one more architecture tensor. Per epoch the run stores, for each cell type t,
`beta_<t>` (raw β, shape (edges,)) and `edge_weight_<t>` (per-node softmax of β, shape
(edges,), each node's rows summing to 1) in EpochRecord.extras.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..config import ConfigError, declare_option
from ..events import artifact
from ..model.ops import OpFactory
from ..model.supernet import MixedOp, MixedOpFactory
from ..registries import SPACES
from .base import Method, MethodRun, offer_preset, register

# PC-DARTS' own config field (config.py `declare_option`): form, CLI flag and TOML key.
declare_option("method pc-darts", "pc_k", 4,
               "PC-DARTS: the ops see 1/K of the channels (paper: 4 on CIFAR, 2 on ImageNet); "
               "init_channels must be a multiple of K.", lo=1, hi=64)

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..train.setup import SearchSetup


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, C, H, W) -> channels regrouped as [g0c0, g1c0, ..., g0c1, ...] (ShuffleNet)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialMixedOp(MixedOp):
    """PC-DARTS (Xu et al. 2020, §3.2; PC-DARTS model_search.py MixedOp): the ops see only the
    first C/K channels; the other channels bypass them (max-pooled 2×2 on stride-2 edges),
    then a K-group channel shuffle, so the next edge processes a different C/K slice. K = 1 is
    exactly MixedOp (and then fastcell batches it like one)."""

    def __init__(self, c: int, stride: int, ops: Sequence[str], factory: dict[str, OpFactory],
                 pool_bn: bool, cols: Sequence[int] | None = None, *, k: int) -> None:
        if c % k:
            raise ValueError(f"partial channels: {c} channels cannot be split into K={k} parts")
        super().__init__(c // k, stride, ops, factory, pool_bn, cols)
        self.k = k
        self.plain = k == 1
        # ceil_mode: odd sizes shrink like the stride-2 ops (ceil(H/2)); even sizes as PC-DARTS
        self.bypass = nn.MaxPool2d(2, 2, ceil_mode=True) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        part = x.shape[1] // self.k
        y = super().forward(x[:, :part], w)                      # (B, C/K, H', W')
        if self.k == 1:  # nothing bypassed; a 1-group shuffle is the identity
            return y
        out = torch.cat([y, self.bypass(x[:, part:])], dim=1)    # (B, C, H', W')
        return channel_shuffle(out, self.k)


def partial_channels(k: int) -> MixedOpFactory:
    """The supernet's `mixed_op` option for partial channel connections with K = `k`."""
    return functools.partial(PartialMixedOp, k=k)


class PCDartsRun(MethodRun):
    def model_options(self) -> dict[str, Any]:
        # edge_norm: β is generic arch-parameter bookkeeping the supernet keeps (Supernet.betas)
        return {"mixed_op": partial_channels(self.cfg.pc_k), "edge_norm": True}

    def artifacts(self) -> tuple[dict[str, Any], ...]:
        out: list[dict[str, Any]] = []
        for t in SPACES.get(self.cfg.space).cell_types:
            out += [artifact(f"edge_weight_{t}", "edge_weights",
                             f"PC-DARTS edge weights softmax(β), {t} cell", cell=t),
                    artifact(f"beta_{t}", "edge_logits", f"PC-DARTS β, {t} cell", cell=t)]
        return tuple(out)

    def extras(self, s: SearchSetup) -> dict[str, np.ndarray]:
        out = {}
        normalised = s.model.edge_weights() or {}
        for t, beta in s.model.betas.items():
            out[f"beta_{t}"] = beta.detach().float().cpu().numpy().copy()
            out[f"edge_weight_{t}"] = normalised[t].detach().float().cpu().numpy().copy()
        return out


def _check(cfg: SearchConfig) -> None:
    if cfg.init_channels % cfg.pc_k:
        raise ConfigError(f"pc_k must divide init_channels ({cfg.init_channels}) so that every "
                          f"cell's channels split into K parts; got {cfg.pc_k}", field="pc_k")


register(Method(
    "pc-darts", "PC-DARTS",
    "partial channels (ops on C/K channels, channel shuffle) and edge normalisation β; the "
    "cell is derived from softmax(α)·softmax(β) (Xu et al. 2020). Paper: bilevel-1st, K=4, "
    "15 warm-up epochs (see the PC-DARTS preset)", PCDartsRun, _check))

offer_preset(
    "PC-DARTS paper settings (CIFAR-10)",
    "PC-DARTS' CIFAR-10 search (Xu et al. 2020): partial channels K=4, edge normalisation β.\n"
    "Watch β's edge weights next to α, and whether the cell avoids all-skip.\n"
    "Needs CIFAR-10 under data_root (or download on) and a GPU.",
    dict(space="darts", algorithm="bilevel-1st", method="pc-darts", dataset="cifar10", pc_k=4,
         init_channels=16, cells=8, epochs=50, warmup_epochs=15, batch_size=256, lr=0.1,
         lr_min=0.0, augment=True, momentum=0.9, weight_decay=3e-4, grad_clip=5.0, arch_lr=6e-4,
         arch_beta1=0.5, arch_beta2=0.999, arch_weight_decay=1e-3, name="PC-DARTS CIFAR-10"))
