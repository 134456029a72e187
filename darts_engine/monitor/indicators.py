"""Collapse indicators from the DARTS-collapse literature, registered by name.

Most indicators are pure functions of plain data for one cell type: the mixing weights (the
run's relaxation of α, softmax by default) or the raw α, shape (edges, ops), and the derived
cell's kept edges as (op, input j, target node) triples (`genotype.genotype_ops`). Two need the
model and are computed every k epochs only (probes.py):
- the dominant eigenvalue of ∇²_α L_val (RobustDARTS, Zela et al. 2020, §4; its code computes
  the full Hessian in src/search/analyze.py) from Hessian-vector products
  (power iteration's Krylov space, Lanczos), or exactly from the full Hessian when α is small
  (NB201: 30 entries);
- the discretisation gap (the gap SDARTS, Chen & Hsieh 2020, and FairDARTS, Chu et al. 2020,
  set out to shrink): supernet validation accuracy minus that of the discretised network
  with inherited weights, after BN recalibration.

Every registered `Indicator` carries a short explanation for students (what it measures, what
collapse looks like on it, where it comes from); the dashboard shows them. Values are stored in
`EpochRecord.indicators` under "<name>.<cell type>" for per-cell indicators ("skip_mass.normal",
"entropy.cell") and "<name>" for run-level ones. A value not measured in an epoch is absent,
never NaN. `IndicatorTracker` (tracker.py) computes them once per epoch inside the search loop
and checks the alert rules (alerts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.spaces import PARAM_FREE_OPS
from ..registries import INDICATORS

KeptEdge = tuple[str, int, int]  # (op, input j, target node), as genotype_ops gives them


# --- pure functions on mixing weights (one cell type: (edges, ops), each row on the simplex) ----
# The weights are the run's relaxation of α: softmax(α) by default, sparsemax when configured.

def _cols(ops: Sequence[str], names: Iterable[str]) -> list[int]:
    names = set(names)
    return [k for k, op in enumerate(ops) if op in names]


def op_mass(w: np.ndarray, ops: Sequence[str], names: Iterable[str]) -> float:
    """Mean over edges of the weight on `names` (0 when the space has none of them)."""
    return float(np.asarray(w)[:, _cols(ops, names)].sum(axis=1).mean())


def pf_mass(w: np.ndarray, ops: Sequence[str]) -> float:
    return op_mass(w, ops, PARAM_FREE_OPS)


def skip_mass(w: np.ndarray, ops: Sequence[str]) -> float:
    return op_mass(w, ops, {"skip_connect"})


def none_mass(w: np.ndarray, ops: Sequence[str]) -> float:
    return op_mass(w, ops, {"none"})


def none_max(w: np.ndarray, ops: Sequence[str]) -> float:
    """The largest `none` weight over edges (0 when the space has no `none`)."""
    cols = _cols(ops, {"none"})
    return float(np.asarray(w)[:, cols].max()) if cols else 0.0


def none_share(w: np.ndarray, ops: Sequence[str]) -> float:
    """Share of edges whose strongest op is `none`."""
    return float(np.isin(np.argmax(w, axis=1), _cols(ops, {"none"})).mean())


def entropy(w: np.ndarray, allowed: np.ndarray | None = None) -> float:
    """Mean over edges of the entropy of the weights divided by log(#ops on the edge):
    1 = uniform, 0 = one-hot. allowed: (edges, ops) bool, the ops each edge has (S1: 2 each;
    default all)."""
    w = np.asarray(w, dtype=np.float64)                   # (edges, ops)
    h = -(w * np.log(np.clip(w, 1e-300, None))).sum(axis=1)
    n = np.full(len(w), w.shape[1]) if allowed is None else np.asarray(allowed).sum(axis=1)
    return float((h / np.log(n)).mean())


def margin(w: np.ndarray) -> float:
    """Mean per-edge gap between the largest and the second-largest weight."""
    w = np.sort(np.asarray(w, dtype=np.float64), axis=1)
    return float((w[:, -1] - w[:, -2]).mean())


# --- pure functions on raw α (one cell type: (edges, ops) logits) ---------------------------

def alpha_norm(alpha: np.ndarray) -> float:
    """‖α‖ over the ops the edges have (the −inf of S1's absent ops left out)."""
    a = np.asarray(alpha, dtype=np.float64)
    return float(np.linalg.norm(a[np.isfinite(a)]))


def alpha_lse(alpha: np.ndarray) -> float:
    """Mean over edges of logsumexp(α_e) (β-DARTS watches it grow)."""
    a = np.asarray(alpha, dtype=np.float64)
    m = a.max(axis=1)
    return float((m + np.log(np.exp(a - m[:, None]).sum(axis=1))).mean())


def argmax_flips(prev: np.ndarray, cur: np.ndarray) -> float:
    """Edges whose strongest op (over all ops) changed since the previous α."""
    return float((np.argmax(prev, axis=1) != np.argmax(cur, axis=1)).sum())


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a between two score vectors of the same items (1 = same order)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    i, j = np.triu_indices(len(x), k=1)
    if len(i) == 0:
        return float("nan")
    return float((np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])).mean())


def learnable_cols(ops: Sequence[str]) -> list[int]:
    return [k for k, op in enumerate(ops) if op not in PARAM_FREE_OPS]


def rank_tau(prev: np.ndarray, cur: np.ndarray, ops: Sequence[str]) -> float:
    """Mean over edges of Kendall's tau between the previous and current ranking of the
    learnable (parametric) ops the edge has (S1: α of −inf are ops it does not have). Edges
    with fewer than two such ops are left out; NaN when no edge has two."""
    cols = np.array(learnable_cols(ops), dtype=int)
    taus = [kendall_tau(p[k], c[k]) for p, c in zip(prev, cur)
            if len(k := cols[np.isfinite(c[cols])]) >= 2]
    return float(np.mean(taus)) if taus else float("nan")


def same_ranking(prev: np.ndarray, cur: np.ndarray, ops: Sequence[str]) -> bool:
    """True when every edge ranks its learnable ops in the same order as before (DARTS+)."""
    cols = learnable_cols(ops)
    return bool(np.array_equal(np.argsort(-prev[:, cols], axis=1, kind="stable"),
                               np.argsort(-cur[:, cols], axis=1, kind="stable")))


# --- pure functions on the derived cell ((op, j, target) triples of one cell type) -----------

def op_count(edges: Sequence[KeptEdge], names: Iterable[str]) -> float:
    names = set(names)
    return float(sum(op in names for op, _, _ in edges))


def skip_count(edges: Sequence[KeptEdge]) -> float:
    return op_count(edges, {"skip_connect"})


def pf_count(edges: Sequence[KeptEdge]) -> float:
    return op_count(edges, PARAM_FREE_OPS)


def genotype_changes(prev: Sequence[KeptEdge], cur: Sequence[KeptEdge]) -> float:
    """Kept (op, input, node) choices of the current cell that the previous cell did not have."""
    before = list(prev)
    changed = 0
    for e in cur:
        if e in before:
            before.remove(e)
        else:
            changed += 1
    return float(changed)


def edges_swapped(prev: Sequence[KeptEdge], cur: Sequence[KeptEdge]) -> float:
    """Kept (input → node) connections that are new since the previous cell (DARTS cells keep
    2 of the incoming edges per node; NB201 keeps all, so this stays 0 there)."""
    return float(len({(j, t) for _, j, t in cur} - {(j, t) for _, j, t in prev}))


# --- the registry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CellState:
    """One cell type at the end of an epoch and one epoch earlier (what per-cell indicators see)."""

    ops: tuple[str, ...]
    alpha: np.ndarray              # (edges, ops) raw α
    weights: np.ndarray            # (edges, ops) mixing weights: the run's relaxation of α
    edges: list[KeptEdge]          # the derived cell
    prev_alpha: np.ndarray
    prev_edges: list[KeptEdge]

    @property
    def allowed(self) -> np.ndarray:
        """(edges, ops) bool: the ops each edge has (α of −inf: not on the edge, S1)."""
        return np.isfinite(self.alpha)


@dataclass(frozen=True)
class Indicator:
    name: str
    title: str
    what: str                      # what it measures
    collapse: str                  # what a collapse looks like on it
    source: str                    # the paper (authors, year, section) it comes from
    per_cell: bool                 # one value per cell type ("name.cell") or one per run
    # None: computed by the tracker from the model or the step records, not from a CellState
    fn: Callable[[CellState], float] | None = None
    every: str = "epoch"           # "epoch", or the config field that sets how often
    # How it is displayed: recorded value × scale, in unit ("" unitless; "pp" percentage
    # points). Accuracy gaps are recorded as fractions and shown as the accuracies are, in %.
    unit: str = ""
    scale: float = 1.0

    def doc(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "what": self.what,
                "collapse": self.collapse, "source": self.source, "per_cell": self.per_cell,
                "every": self.every, "unit": self.unit}


def _reg(name: str, title: str, what: str, collapse: str, source: str, *, per_cell: bool = True,
         fn: Callable[[CellState], float] | None = None, every: str = "epoch", unit: str = "",
         scale: float = 1.0) -> None:
    INDICATORS.register(name, Indicator(name, title, what, collapse, source, per_cell, fn, every,
                                        unit, scale), title)


_DARTS_PLUS = ("DARTS+ (Liang et al. 2019, arXiv 1909.06035): its two early-stopping criteria, "
               "≥ 2 skip_connect in the normal cell or a ranking of learnable ops stable for 10 "
               "epochs")
_reg("skip_count", "skip_connect in the derived cell",
     "How many of the edges kept in the final cell are skip connections (NB201: of 6 edges; "
     "DARTS: of 8).",
     "Climbs towards the maximum: a cell of skips has almost nothing left to learn with. "
     "DARTS+ stops at 2 in the normal cell.", _DARTS_PLUS, fn=lambda c: skip_count(c.edges))
_reg("pf_count", "Parameter-free ops in the derived cell",
     "How many kept edges are parameter-free: none, skip, pooling (or noise).",
     "Rises as learnable convolutions lose the competition. The all-skip NB201 cell scores 6/6.",
     "RobustDARTS (Zela et al. 2020, §3: DARTS' degenerate cells in spaces S1-S4); "
     "NAS-Bench-201 (Dong & Yang 2020), whose DARTS cells end all-skip",
     fn=lambda c: pf_count(c.edges))
_reg("pf_mass", "Parameter-free mass",
     "Mean over edges of the total mixing weight (softmax of α) on parameter-free ops (none, "
     "skip, pools).",
     "Creeps up while convolutions lose weight. It can also fall while skip rises, because "
     "`none` loses weight at the same time: look at skip and none separately.",
     "RobustDARTS (Zela et al. 2020, §3), the weight behind its degenerate cells",
     fn=lambda c: pf_mass(c.weights, c.ops))
_reg("skip_mass", "skip_connect mass",
     "Mean over edges of the mixing weight (softmax of α) on skip_connect.",
     "Rises steadily in a collapsing bi-level search, long before the derived cell changes.",
     "FairDARTS (Chu et al. 2020)", fn=lambda c: skip_mass(c.weights, c.ops))
_reg("none_mass", "none mass",
     "Mean over edges of the mixing weight (softmax of α) on the `none` (zero) op.",
     "High `none` weight silently scales every other op on the edge down; NB201 searches on "
     "harder data end with several `none` edges.", "NATS-Bench (Dong et al. 2021)",
     fn=lambda c: none_mass(c.weights, c.ops))
_reg("none_max", "Largest none weight",
     "The largest mixing weight of `none` on any edge.",
     "Near 1 means one edge is effectively cut off. The DARTS rule never picks `none`, so this "
     "is the only place you see it.",
     "DARTS' derivation rule excludes `none` (Liu et al. 2019, §2.4); NATS-Bench "
     "(Dong et al. 2021)",
     fn=lambda c: none_max(c.weights, c.ops))
_reg("none_share", "Edges won by none",
     "Share of edges whose strongest op is `none`.",
     "Rises when the search learns to switch edges off instead of choosing an operation.",
     "NATS-Bench (Dong et al. 2021)", fn=lambda c: none_share(c.weights, c.ops))
_reg("entropy", "Decidedness (normalised entropy)",
     "Mean entropy of each edge's mixing weights (softmax of α), divided by log(#ops on the "
     "edge): 1 = all ops equal, 0 = one op has all the weight.",
     "A fast drop together with rising parameter-free mass is the collapse signature. While it "
     "is near 1 the derived cell is noise.",
     "Shannon entropy of DARTS' per-edge softmax (Liu et al. 2019, §2.2 eq. 2)",
     fn=lambda c: entropy(c.weights, c.allowed))
_reg("margin", "Top-1 minus top-2 weight",
     "Mean over edges of the gap between the strongest and second-strongest op weight.",
     "Near 0: the choice on an edge is a coin toss. A margin growing in favour of skip means "
     "the collapse is settling in.",
     "DARTS' per-edge softmax (Liu et al. 2019, §2.2 eq. 2)", fn=lambda c: margin(c.weights))
_reg("argmax_flips", "Argmax flips since last epoch",
     "How many edges changed their strongest op since the previous epoch.",
     "Many flips: the search has not decided yet. Flips all towards skip or none: collapse "
     "in progress.", _DARTS_PLUS,
     fn=lambda c: argmax_flips(c.prev_alpha, c.alpha))
_reg("genotype_changes", "Derived-cell changes since last epoch",
     "How many (op, input) choices of the derived cell are new since the previous epoch.",
     "Should calm down as the search converges; late changes to parameter-free ops are "
     "collapse.", _DARTS_PLUS, fn=lambda c: genotype_changes(c.prev_edges, c.edges))
_reg("edges_swapped", "Kept edges swapped since last epoch",
     "How many input connections of the derived DARTS cell are new since the previous epoch "
     "(NB201 keeps every edge, so it stays 0 there).",
     "Persistent swapping means edge strengths are nearly tied: the cell is not yet decided.",
     _DARTS_PLUS, fn=lambda c: edges_swapped(c.prev_edges, c.edges))
_reg("rank_tau", "Ranking stability of learnable ops (Kendall τ)",
     "Per edge, how similarly the learnable ops are ranked by α now and one epoch ago "
     "(Kendall's τ, mean over edges; 1 = same order). Absent when a space has only one "
     "learnable op (S2-S4).",
     "Stays at 1 once the search has settled; DARTS+ stops when it has been stable for a while.",
     _DARTS_PLUS, fn=lambda c: rank_tau(c.prev_alpha, c.alpha, c.ops))
_reg("alpha_norm", "‖α‖",
     "The Euclidean norm of the raw architecture logits of the cell type.",
     "Grows as the softmax sharpens; β-DARTS regularises it to stop collapse.",
     "β-DARTS (Ye et al. 2022)", fn=lambda c: alpha_norm(c.alpha))
_reg("alpha_lse", "Mean logsumexp(α)",
     "Mean over edges of logsumexp of the raw α: how large the logits are, softmax aside.",
     "Keeps growing in DARTS; β-DARTS penalises exactly this quantity.",
     "β-DARTS (Ye et al. 2022): its Beta-Decay regularisation", fn=lambda c: alpha_lse(c.alpha))
_reg("rank_stable_epochs", "Epochs with an unchanged ranking",
     "For how many epochs in a row every edge (every cell type) has kept the same order of its "
     "learnable ops.", "DARTS+ stops the search once this reaches 10: more epochs only give "
     "parameter-free ops time to take over.", _DARTS_PLUS, per_cell=False)
_reg("alpha_grad_norm", "α gradient norm",
     "Mean over the epoch's reported steps of the norm of the α gradient.",
     "In single-level search it drops to ~0 once the training data is memorised: α then stop "
     "moving. A bi-level search keeps receiving a gradient from the validation batches.",
     "an overfitting signal in the spirit of DARTS+ (Liang et al. 2019)", per_cell=False)
_reg("weight_grad_norm", "Weight gradient norm",
     "Mean over the epoch's reported steps of the norm of the weight gradient (before clipping).",
     "Falling towards 0 means the supernet has fitted its training stream.",
     "an overfitting signal in the spirit of DARTS+ (Liang et al. 2019)", per_cell=False)
_reg("train_val_gap", "Supernet train − validation accuracy",
     "Training accuracy of the epoch minus validation accuracy of the supernet.",
     "A growing gap means the weights overfit: DARTS+ blames collapse on exactly this.",
     "DARTS+ (Liang et al. 2019): collapse as overfitting of bi-level search", per_cell=False,
     unit="pp", scale=100.0)
_reg("hessian_eig", "λmax of the validation-loss Hessian in α",
     "The largest eigenvalue of ∇²_α L_val on the same fixed held-out batch(es) each time "
     "(+ α weight decay): how sharp the loss landscape is along α.",
     "Rises sharply before the search collapses: a sharp minimum in α loses much accuracy "
     "when α is rounded to one op per edge. DARTS-ES stops when its local average (over "
     "5 readings) grows 30% over 4 readings.",
     "RobustDARTS (Zela et al. 2020, §4: λmax and early stopping, DARTS-ES; its code "
     "src/utils.py EVLocalAvg)", per_cell=False, every="hessian_every")
_reg("disc_val_acc", "Validation accuracy of the derived cell",
     "Validation accuracy of the discretised network (one op per kept edge, inherited weights, "
     "BN statistics recomputed), without retraining.",
     "Drops below the supernet's accuracy when the supernet relied on a mixture it will not "
     "keep.", "SDARTS (Chen & Hsieh 2020); FairDARTS (Chu et al. 2020)", per_cell=False,
     every="gap_every", unit="%", scale=100.0)
_reg("disc_gap", "Discretisation gap",
     "Supernet validation accuracy minus that of the discretised network with the same weights.",
     "Large when α is undecided or the loss is sharp in α; SDARTS, MS-DARTS and FairDARTS all "
     "try to shrink it.",
     "SDARTS (Chen & Hsieh 2020); FairDARTS (Chu et al. 2020); MS-DARTS (Hsieh et al. 2021)",
     per_cell=False, every="gap_every", unit="pp", scale=100.0)


def indicator_key(name: str, cell: str | None = None) -> str:
    return f"{name}.{cell}" if cell else name


def split_key(key: str) -> tuple[Indicator, str | None]:
    """'skip_mass.normal' -> (the skip_mass Indicator, 'normal'); 'disc_gap' -> (..., None)."""
    name, _, cell = key.partition(".")
    return INDICATORS.get(name), cell or None


def indicator_docs() -> list[dict[str, Any]]:
    """Every registered indicator's explanation, in registry order (for the dashboard)."""
    return [INDICATORS.get(n).doc() for n in INDICATORS.names()]
