"""The per-run collapse monitor the search loop calls once per epoch: it computes every
registered indicator (indicators.py), the model probes on their epochs (probes.py), and checks
the alert rules (alerts.py), deciding what genotype to keep when an alert stops the run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..events import AlertRecord, Event, StepRecord
from ..model.genotype import genotype_ops, parse_genotype
from ..model.relaxations import get_relaxation
from ..registries import INDICATORS
from .alerts import check_alerts
from .indicators import CellState, indicator_key, learnable_cols, same_ranking
from .probes import Batch, discrete_accuracy, hessian_eigenvalue

if TYPE_CHECKING:
    from ..train.setup import SearchSetup


@dataclass(frozen=True)
class StopDecision:
    genotype: str                  # the genotype to keep
    epoch: int                     # the epoch it was derived at (-1: before training)
    message: str


class IndicatorTracker:
    """Computes the indicators at the end of every epoch and checks the alert rules.

    Created once per run after a resume has loaded the checkpoint: `history` (the loop's
    per-epoch list, saved in the checkpoint) holds the indicators and genotypes of the epochs
    already done, and `alphas` / `genotype` are those of the last of them.
    """

    def __init__(self, setup: SearchSetup, history: Sequence[Mapping[str, Any]],
                 alphas: Mapping[str, np.ndarray], genotype: str) -> None:
        self.s = setup
        self.rows = [{"epoch": h["epoch"], **h.get("indicators", {})} for h in history]
        self.genotypes = {h["epoch"]: h["genotype"] for h in history if "genotype" in h}
        if not history:
            self.genotypes[-1] = genotype
        self.prev_alphas, self.prev_genotype = dict(alphas), genotype
        self.stop: StopDecision | None = None
        self._grads: dict[str, list[float]] = {"alpha_grad_norm": [], "weight_grad_norm": []}

    def listen(self, on_event: Callable[[Event], None] | None) -> Callable[[Event], None]:
        """Wrap the loop's event sink to average the gradient norms the StepRecords carry."""
        def forward(ev: Event) -> None:
            if isinstance(ev, StepRecord):
                for name, values in self._grads.items():
                    if np.isfinite(getattr(ev, name)):
                        values.append(getattr(ev, name))
            if on_event is not None:
                on_event(ev)
        return forward

    def epoch(self, epoch: int, alphas: Mapping[str, np.ndarray], genotype: str,
              metrics: Mapping[str, float]) -> tuple[dict[str, float], list[AlertRecord]]:
        """Indicators of the epoch just finished and the alerts that fire on it (`metrics`: the
        task's by name; the accuracy gaps need train_acc / val_acc and are NaN without)."""
        train_acc, val_acc = metrics.get("train_acc", np.nan), metrics.get("val_acc", np.nan)
        cfg, space = self.s.cfg, self.s.space
        relaxation = get_relaxation(cfg.relaxation)
        progress = self.s.model.progress   # the loop's, at the end of this epoch

        def relax(a: np.ndarray) -> np.ndarray:
            return relaxation.numpy(a, progress) if relaxation.uses_progress else relaxation.numpy(a)
        ind: dict[str, float] = {}
        cur = genotype_ops(space.parse(genotype))
        prev = genotype_ops(space.parse(self.prev_genotype))
        for cell in space.cell_types:
            state = CellState(space.ops, alphas[cell], relax(alphas[cell]), cur[cell],
                              self.prev_alphas[cell], prev[cell])
            for name in INDICATORS.names():
                fn = INDICATORS.get(name).fn
                if fn is not None:
                    ind[indicator_key(name, cell)] = fn(state)
        if len(learnable_cols(space.ops)) >= 2:
            stable = all(same_ranking(self.prev_alphas[t], alphas[t], space.ops)
                         for t in space.cell_types)
            last = self.rows[-1].get("rank_stable_epochs", 0.0) if self.rows else 0.0
            ind["rank_stable_epochs"] = last + 1.0 if stable else 0.0
        for name, values in self._grads.items():
            if values:
                ind[name] = float(np.mean(values))
            values.clear()
        ind["train_val_gap"] = train_acc - val_acc
        ind.update(self._model_indicators(epoch, genotype, val_acc))
        ind = {k: float(v) for k, v in ind.items() if np.isfinite(v)}  # plain floats, no NaN

        self.rows.append({"epoch": epoch, **ind})
        self.genotypes[epoch] = genotype
        self.prev_alphas, self.prev_genotype = dict(alphas), genotype
        fired = check_alerts(self.rows, cfg)
        records = [AlertRecord(epoch, f.rule, f.message, cfg.alert_action) for f in fired]
        if fired and cfg.alert_action == "stop":
            f = fired[0]
            kept = max((e for e in self.genotypes if e <= f.keep_epoch),
                       default=min(self.genotypes))
            self.stop = StopDecision(
                self.genotypes[kept], kept,
                f"Stopped by alert {f.rule!r} at epoch {epoch}; keeping the genotype derived "
                f"{'before training' if kept < 0 else f'at epoch {kept}'}: "
                f"{self.genotypes[kept]}")
        return ind, records

    def _model_indicators(self, epoch: int, genotype: str, val_acc: float) -> dict[str, float]:
        """λmax and the discretisation gap on their epochs. The global RNG is saved and
        restored, so turning them on does not change the search itself."""
        cfg, s = self.s.cfg, self.s
        due_h = cfg.hessian_every > 0 and (epoch + 1) % cfg.hessian_every == 0
        due_g = cfg.gap_every > 0 and ((epoch + 1) % cfg.gap_every == 0
                                        or epoch == cfg.epochs - 1)
        out: dict[str, float] = {}
        if not (due_h or due_g):
            return out
        devices = [s.device.index or 0] if s.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if due_h:
                batches = _first(s.data.held_out.ordered(cfg.batch_size), cfg.hessian_batches)
                out["hessian_eig"] = hessian_eigenvalue(s.model, batches, s.space.cell_types,
                                                        cfg.arch_weight_decay)
            if due_g:
                calibration = _first(s.data.train.ordered(cfg.batch_size), cfg.gap_bn_batches)
                acc = discrete_accuracy(s.model, parse_genotype(genotype, ops=s.space.ops),
                                        s.space, calibration, s.data.held_out.ordered())
                out["disc_val_acc"], out["disc_gap"] = acc, val_acc - acc
        return out


def _first(batches: Iterable[Batch], n: int) -> list[Batch]:
    out = []
    for b in batches:
        if len(out) == n:
            break
        out.append(b)
    return out
