"""LFR-DARTS (Hao & Zhu, Soft Computing 26, 2022) — "LFR-DARTS (approximation)".

Only the paper's abstract could be read (no code was found): cells are searched one depth at
a time, shallow to deep; after each, weak connections are pruned and the supernet is deepened,
so the next cell is searched in the context of the cells already fixed. Stage counts, pruning
rule and schedules are unknown; this is our interpretation (deepening as in P-DARTS, Chen et
al. 2019), run inside the ordinary search loop:

- Stages follow the supernet's resolution stages (C, 2C, 4C). With `lfr_stages` = 3 each is
  one stage; with fewer, the deeper resolutions are searched together in the last stage.
  `epochs` are split evenly; `warmup_epochs` holds back α at the start of *every* stage.
- Stage k trains a network cut after its own cells (a classifier head per depth: the supernet
  is built `staged`), so the supernet deepens from stage to stage. Only stage k's weights,
  its head and the α of the cell types that occur in it are trained; α are re-initialised
  (1e-3·randn, seeded) and both optimisers rebuilt at every stage start.
- At the end of stage k its cells are derived with the space's rule (DARTS: top-2 edges per
  node, so weak connections are pruned; NB201: one op per edge) and frozen: fixed one-hot
  mixing, only the kept ops still run, parameters out of every optimiser (they never change
  again). The stem freezes with stage 0, NB201's residual blocks with their stage. Frozen
  cells keep computing BN on batch statistics in training mode (running statistics, which
  evaluation uses, keep adapting to the fixed cell; there are no BN weights: affine=False).
- One learning-rate cosine over the whole run (P-DARTS restarts it per stage; LFR's is unknown).

What the run stores per epoch (EpochRecord.extras):
- `lfr_stage`: (1,) the stage the epoch belongs to (0-based).
- `lfr_cells_<t>` for each cell type t: (stages, edges, ops) 0/1 mixing weights of each
  stage's derived cell in α's layout: frozen stages fixed, the current stage as derived from
  its α right now, later stages and cell types that do not occur at a depth all zero.
  `stage_genotypes()` turns the last row back into kept edges per stage.
Each freeze is also logged ("LFR-DARTS stage k/S frozen: <genotype>"). The epoch genotype is
the current stage's cell; the run's final genotype is the last stage's.
Any update rule works; the abstract does not say which one the paper used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..config import ConfigError, declare_option
from ..events import Event, LogRecord, artifact
from ..model.genotype import Genotype, parse_genotype
from ..model.spaces import discrete_weights
from ..model.supernet import (
    ALPHA_INIT_SCALE,
    N_RESOLUTION_STAGES,
    DartsCell,
    NB201Cell,
    freeze_cell,
)
from ..registries import SPACES
from ..train.setup import current_genotype, make_optimisers
from .base import Method, MethodRun, register

# LFR-DARTS' own config field (config.py `declare_option`).
declare_option("method lfr-darts", "lfr_stages", 3,
               "LFR-DARTS (approximation): depth stages searched shallow to deep, each deriving "
               "and freezing its cells (3 = one per resolution stage; fewer group the deeper "
               "resolutions). epochs are split evenly; warmup_epochs applies at the start of "
               "every stage.", lo=1, hi=3)

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..model.supernet import Supernet
    from ..train.setup import SearchSetup


def stage_starts(n_stages: int, epochs: int) -> list[int]:
    """First epoch of each stage: the epochs split evenly, later stages taking the remainder."""
    return [k * epochs // n_stages for k in range(n_stages)]


def stage_depths(n_stages: int) -> list[int]:
    """Resolution stages the network runs through during each LFR stage, e.g. [1, 2, 3]."""
    return [k + 1 for k in range(n_stages - 1)] + [N_RESOLUTION_STAGES]


def _cell_type(module: nn.Module) -> str | None:
    if isinstance(module, DartsCell):
        return "reduce" if module.reduction else "normal"
    return "cell" if isinstance(module, NB201Cell) else None


class LFRRun(MethodRun):
    def __init__(self, cfg: SearchConfig) -> None:
        super().__init__(cfg)
        self.n_stages = cfg.lfr_stages
        self.starts = stage_starts(self.n_stages, cfg.epochs)
        self.depths = stage_depths(self.n_stages)
        self.stage = 0
        self.frozen: list[Genotype] = []   # one per finished stage

    def model_options(self) -> dict[str, Any]:
        return {"staged": True}

    def artifacts(self) -> tuple[dict[str, Any], ...]:
        cells = SPACES.get(self.cfg.space).cell_types
        return (artifact("lfr_stage", "stage", "LFR-DARTS stage"),
                *(artifact(f"lfr_cells_{t}", "stage_cells",
                           f"LFR-DARTS cells frozen per stage, {t} cell", cell=t) for t in cells))

    # --- which modules belong to a stage ---------------------------------------------------
    def _modules(self, model: Supernet, k: int) -> list[nn.Module]:
        lo = self.depths[k - 1] if k else 0
        return [m for res in model.resolution_stages()[lo:self.depths[k]] for m in res]

    def _cell_types(self, model: Supernet, k: int) -> set[str]:
        return {t for m in self._modules(model, k) if (t := _cell_type(m))}

    # --- stage transitions -----------------------------------------------------------------
    def _freeze(self, s: SearchSetup, k: int, g: Genotype) -> None:
        onehot = discrete_weights(g, s.space)    # cell type -> (edges, ops)
        for m in self._modules(s.model, k):
            t = _cell_type(m)
            if t is None:
                m.requires_grad_(False)
            else:
                freeze_cell(m, torch.tensor(onehot[t], dtype=torch.float32))

    def _enter(self, s: SearchSetup, k: int, reset_alpha: bool) -> None:
        """Deepen to stage k: its modules and head train, α of its cell types are searched."""
        model, self.stage = s.model, k
        model.depth = self.depths[k]
        for later in range(k, self.n_stages):
            for m in self._modules(model, later):
                m.requires_grad_(later == k)
        for d, head in enumerate(model.stage_heads(), start=1):
            head.requires_grad_(d == model.depth)
        searched = self._cell_types(model, k)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1009 + k)
        for t, a in model.alphas.items():
            if reset_alpha:
                with torch.no_grad():
                    a.copy_(ALPHA_INIT_SCALE * torch.randn(a.shape, generator=gen))
            a.requires_grad_(t in searched)
        s.ctx.w_opt, s.ctx.a_opt = make_optimisers(s.cfg, model)
        for group in s.ctx.w_opt.param_groups:
            group["lr"] = s.ctx.lr

    def attach(self, s: SearchSetup) -> None:
        self._enter(s, 0, reset_alpha=False)  # stage 0 keeps the seed's α initialisation

    def begin_epoch(self, s: SearchSetup, epoch: int) -> list[Event]:
        events: list[Event] = []
        target = max(k for k, start in enumerate(self.starts) if start <= epoch)
        while self.stage < target:
            g = parse_genotype(current_genotype(s), ops=s.space.ops)
            self._freeze(s, self.stage, g)
            self.frozen.append(g)
            types = ", ".join(sorted(self._cell_types(s.model, self.stage)))
            events.append(LogRecord(
                f"LFR-DARTS stage {self.stage + 1}/{self.n_stages} frozen ({types} cells): {g}",
                epoch=epoch))
            self._enter(s, self.stage + 1, reset_alpha=True)
        s.ctx.update_alpha = epoch - self.starts[self.stage] >= self.cfg.warmup_epochs
        return events

    # --- what the run stores ---------------------------------------------------------------
    def extras(self, s: SearchSetup) -> dict[str, np.ndarray]:
        current = parse_genotype(current_genotype(s), ops=s.space.ops)
        cells = {t: np.zeros((self.n_stages, s.space.n_edges, len(s.space.ops)), np.float32)
                 for t in s.space.cell_types}
        for k, g in enumerate([*self.frozen, current]):
            for t, w in discrete_weights(g, s.space).items():
                if t in self._cell_types(s.model, k):
                    cells[t][k] = w
        return {"lfr_stage": np.array([self.stage], np.float32),
                **{f"lfr_cells_{t}": w for t, w in cells.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "frozen": [str(g) for g in self.frozen]}

    def load_state_dict(self, s: SearchSetup, state: dict[str, Any]) -> None:
        """Replay the freezes of a checkpointed run; α and weights come from its model state."""
        self.frozen = [parse_genotype(text, ops=s.space.ops) for text in state["frozen"]]
        for k, g in enumerate(self.frozen):
            self._freeze(s, k, g)
        self._enter(s, state["stage"], reset_alpha=False)


def stage_genotypes(space_ops: tuple[str, ...], edge_labels: tuple[str, ...],
                    cells: Mapping[str, np.ndarray]) -> list[dict[str, list[tuple[str, str]]]]:
    """Per stage, cell type -> kept (edge label, op) pairs, from one epoch's `lfr_cells_<t>`
    arrays (stages, edges, ops). Cell types that do not occur at a depth, and stages not yet
    reached, are left out."""
    n_stages = next(iter(cells.values())).shape[0]
    out: list[dict[str, list[tuple[str, str]]]] = []
    for k in range(n_stages):
        stage = {t: [(edge_labels[e], space_ops[o]) for e, o in zip(*np.nonzero(w[k]))]
                 for t, w in cells.items() if w[k].any()}
        if stage:
            out.append(stage)
    return out


def _check(cfg: SearchConfig) -> None:
    if cfg.epochs < cfg.lfr_stages:
        raise ConfigError(f"lfr_stages must be <= epochs ({cfg.epochs}) so that every stage gets "
                          f"an epoch; got {cfg.lfr_stages}", field="lfr_stages")


register(Method(
    "lfr-darts", "LFR-DARTS (approximation)",
    "cells searched depth by depth, shallow to deep: each stage derives and freezes its cells "
    "(weak connections pruned) and the supernet is deepened for the next (Hao & Zhu 2022; "
    "only the abstract was available, so stages, pruning and schedule are our interpretation)",
    LFRRun, _check))
