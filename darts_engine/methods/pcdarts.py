"""PC-DARTS (Xu et al., ICLR 2020; yuhuixu1993/PC-DARTS) as a method.

- Partial channel connections (their model_search.py `MixedOp`, `channel_shuffle`): every
  MixedOp runs its ops on the first C/K channels (K = `pc_k`); the rest bypass them (2×2
  max-pooled on reduction edges); then a K-group channel shuffle. `supernet.PartialMixedOp`.
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

from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ConfigError
from ..events import artifact
from ..registries import SPACES
from .base import Method, MethodRun, offer_preset, register

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..train.setup import SearchSetup


class PCDartsRun(MethodRun):
    def model_options(self) -> dict[str, Any]:
        return {"partial_k": self.cfg.pc_k, "edge_norm": True}

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
