"""The read model: one run as a page draws it, read from the store without Streamlit (in the
spirit of Aim's read API between the store and the UI). `load_view(store, run_id)` gives the
epochs, strided steps, the merged α timeline, the space's ops and edges, op masks, the run's
relaxation, the run's declared metrics, and the per-epoch artifacts it declared, found by kind
(edge weights β, stage cells), logs and alerts; `run_status` the status/ETA when no live manager
knows the run; `list_runs` the runs listing after marking runs whose writer is gone. Pages only
cache and draw. A retrain run (runs/kinds.py) has no ops, edges or α: its view has them empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..model.genotype import Genotype, softmax
from ..registries import RELAXATIONS, SPACES
from ..viz.cells import derive
from .kinds import RETRAIN, run_kind
from .states import is_active
from .store import RunStore

MAX_STEP_POINTS = 600        # step curves are strided server-side to at most this many points
MAX_LINE_POINTS = 150        # time points per small-multiple line


@dataclass(frozen=True)
class ImageStrip:
    """One declared image strip's history: epochs (T,), strips (T, panels, H, W, 3) in [0, 1],
    scores (T, panels) (PSNR against the last panel) or None, and its declaration (panel titles
    under "panels")."""

    declaration: dict[str, Any]
    epochs: np.ndarray
    strips: np.ndarray
    scores: np.ndarray | None

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(self.declaration.get("panels") or ())

    def at(self, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(strip, scores) of the latest recorded epoch <= `epoch` (the first if none is)."""
        i = max(int(np.searchsorted(self.epochs, epoch, side="right")) - 1, 0)
        return self.strips[i], None if self.scores is None else self.scores[i]


def _image_strips(s: RunStore, run_id: str, declared: Iterable[dict[str, Any]]
                  ) -> tuple[ImageStrip, ...]:
    out = []
    for artifact in declared:
        idx, strips = s.extras_history(run_id, str(artifact["name"]))
        if not len(idx):
            continue
        epochs, scores = idx["epoch"].to_numpy(), None
        if artifact.get("scores"):
            s_idx, values = s.extras_history(run_id, str(artifact["scores"]))
            if len(s_idx) == len(idx) and (s_idx["epoch"].to_numpy() == epochs).all():
                scores = values
        out.append(ImageStrip(dict(artifact), epochs, strips, scores))
    return tuple(out)


@dataclass(frozen=True)
class RunView:
    """A consistent copy of one run as the pages need it. α are raw logits."""

    run: dict[str, Any]
    epochs: pd.DataFrame            # epoch_metrics
    steps: pd.DataFrame             # step_metrics, strided to MAX_STEP_POINTS
    alpha_index: pd.DataFrame       # epoch, step, source of every recorded α snapshot
    alphas: dict[str, np.ndarray]   # cell -> (T, edges, ops), rows as alpha_index
    ops: tuple[str, ...]
    edges: dict[str, tuple[str, ...]]
    param_free: tuple[str, ...]
    # Per-epoch artifacts, found through the run's declaration by kind (never by name):
    # kind edge_logits: cell -> (epochs, raw β (T, edges)) (PC-DARTS)
    betas: dict[str, tuple[np.ndarray, np.ndarray]]
    # kind edge_weights: cell -> (epochs, (T, edges)), softmax of β over each node's inputs
    edge_weights: dict[str, tuple[np.ndarray, np.ndarray]]
    stage: np.ndarray | None        # kind stage, latest epoch: (1,) the stage searched now
    stage_cells: dict[str, np.ndarray]  # kind stage_cells, latest: cell -> (stages, edges, ops)
    logs: pd.DataFrame              # the last log lines
    alerts: pd.DataFrame
    # The run's declaration (RunStarted): metric dicts, and artifact dicts grouped by kind.
    metrics: tuple[dict[str, Any], ...] = ()
    artifacts: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    # kind image_strip (SR: LR | bicubic | SR | HR per epoch), with the scores it names
    image_strips: tuple[ImageStrip, ...] = ()

    @property
    def headline(self) -> dict[str, Any] | None:
        """The one metric shown where validation accuracy used to be; None if undeclared."""
        return next((m for m in self.metrics if m.get("headline")), None)

    def headline_values(self) -> np.ndarray:
        """The headline metric per epoch, unscaled; empty if undeclared or not recorded yet."""
        h = self.headline
        if h is None or h["name"] not in self.epochs:
            return np.array([], np.float64)
        return self.epochs[h["name"]].to_numpy(np.float64)

    def curve_epochs(self) -> pd.DataFrame:
        """epochs for the curve figures, which draw val_acc as the held-out accuracy: a run that
        records no val_acc (a retrain: its headline is test_acc) gets its held-out headline
        there."""
        h, ep = self.headline, self.epochs
        if (h is None or h["name"] == "val_acc" or h.get("split") != "held_out"
                or h["name"] not in ep or ("val_acc" in ep and ep["val_acc"].notna().any())):
            return ep
        return ep.assign(val_acc=ep[h["name"]])

    @property
    def config(self) -> dict[str, Any]:
        return self.run["config"]

    @property
    def kind(self) -> str:
        """"search" or "retrain" (runs/kinds.py)."""
        return run_kind(self.config)

    def op_mask(self, cell: str) -> np.ndarray | None:
        """(edges, ops) bool, False where the edge lacks the op (RobustDARTS S1); else None."""
        name = self.config.get("space")
        space = SPACES.get(name) if name in SPACES else None
        return space.op_mask(cell) if space is not None and space.edge_ops is not None else None

    def mix(self, raw: np.ndarray, progress: float | np.ndarray = 1.0) -> np.ndarray:
        """Raw α -> the mixing weights the run uses (softmax unless its relaxation differs), at
        the search progress of the snapshot (`progress_at`; sparsestmax's radius grows with
        it). A (T, edges, ops) history takes one progress per snapshot."""
        name = self.config.get("relaxation", "softmax")
        if name not in RELAXATIONS:
            return softmax(raw)
        relax = RELAXATIONS.get(name)
        if not relax.uses_progress:
            return relax.numpy(raw)
        p = np.asarray(progress, dtype=np.float64)
        if p.ndim == 0:
            return relax.numpy(raw, float(p))
        return np.stack([relax.numpy(r, float(q)) for r, q in zip(raw, p)])

    def progress_at(self, i: int | np.ndarray) -> float | np.ndarray:
        """Search progress (0 -> 1) of snapshot row(s) i: its step over the planned steps."""
        total = max(1, int(self.config.get("epochs", 1)) * max(1, self.steps_per_epoch))
        steps = self.alpha_index["step"].to_numpy(np.float64)[i]
        return np.clip(steps / total, 0.0, 1.0)

    def snapshot(self, i: int) -> dict[str, np.ndarray]:
        """Raw α of every cell at snapshot i (a row of alpha_index)."""
        return {cell: a[i] for cell, a in self.alphas.items()}

    def _per_epoch_at(self, history: dict[str, tuple[np.ndarray, np.ndarray]], i: int
                      ) -> dict[str, np.ndarray]:
        """cell -> the row of a per-epoch history (β) from the last epoch that ended by
        snapshot i; mid-epoch snapshots get the previous epoch's. Cells without one: absent."""
        epoch = int(self.alpha_index["epoch"].iloc[i])
        if self.alpha_index["source"].iloc[i] != "epoch":
            epoch -= 1
        out = {}
        for cell, (epochs, values) in history.items():
            k = np.searchsorted(epochs, epoch, side="right") - 1
            if k >= 0:
                out[cell] = values[k]
        return out

    def edge_weights_at(self, i: int) -> dict[str, np.ndarray]:
        """PC-DARTS edge weights (cell -> (edges,)) as of snapshot i; {} for other runs."""
        return self._per_epoch_at(self.edge_weights, i)

    def genotype_at(self, i: int) -> Genotype:
        """The cell that would be derived at snapshot i: the space's rule, the run's
        relaxation, and PC-DARTS β of the last epoch that ended by then."""
        betas = self._per_epoch_at(self.betas, i)
        return derive(self.config["space"], self.ops, self.snapshot(i),
                      normalise=self.mix,
                      edge_weights=betas if len(betas) == len(self.alphas) else None)

    @property
    def cells(self) -> tuple[str, ...]:
        return tuple(self.edges)

    @property
    def steps_per_epoch(self) -> int:
        return int(self.run.get("steps_per_epoch") or 0)

    def epoch_rows(self) -> np.ndarray:
        """Snapshot positions of the end-of-epoch α, in epoch order."""
        return np.flatnonzero(self.alpha_index["source"].to_numpy() == "epoch")


def _space_info(run: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]],
                                                tuple[str, ...]]:
    if run_kind(run["config"]) == RETRAIN:  # a discrete network: no α
        return (), {}, ()
    space = SPACES.get(run["config"]["space"])
    ops = tuple(run["ops"]) or space.ops
    edges = {c: tuple(e) for c, e in run["edges"].items()} or {
        c: space.edge_labels for c in space.cell_types}
    return ops, edges, tuple(o for o in ops if o in space.param_free)


def _alpha_timeline(s: RunStore, run_id: str, cells: tuple[str, ...]
                    ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Step and epoch α snapshots merged by step; at equal steps the epoch record wins.
    Cells are read one after the other while the run may still write: all are cut to the
    steps every cell has, so snapshot i means the same step in each."""
    timelines = {}
    for cell in cells:
        parts = [s.alpha_history(run_id, cell, source=source) for source in ("step", "epoch")]
        idx = pd.concat([p[0].assign(source=src) for p, src in zip(parts, ("step", "epoch"),
                                                                      strict=True)],
                        ignore_index=True)
        a = np.concatenate([p[1] for p in parts])
        order = np.lexsort(((idx["source"] != "epoch").to_numpy(), idx["step"].to_numpy()))
        idx = idx.iloc[order].reset_index(drop=True)
        keep = ~idx.duplicated("step", keep="first").to_numpy()
        timelines[cell] = (idx[keep].reset_index(drop=True), a[order][keep])
    if not timelines:
        return pd.DataFrame({"epoch": [], "step": [], "source": []}), {}
    last = min((int(i["step"].iloc[-1]) if len(i) else -1) for i, _ in timelines.values())
    index = None
    arrays = {}
    for cell, (idx, a) in timelines.items():
        n = int((idx["step"] <= last).sum())
        index = idx.iloc[:n] if index is None else index
        arrays[cell] = a[:n]
    return index, arrays


def _histories(s: RunStore, run_id: str, artifacts: Iterable[dict[str, Any]],
               edges: dict[str, tuple[str, ...]]
               ) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
    """cell (None for a run-wide artifact) -> (epochs, values (T, ...)) of the declared
    artifacts that have been recorded; artifacts of a cell the run lacks are skipped."""
    out = {}
    for artifact in artifacts:
        cell = artifact.get("cell")
        if cell is not None and cell not in edges:
            continue
        idx, values = s.extras_history(run_id, str(artifact["name"]))
        if len(idx):
            out[cell] = (idx["epoch"].to_numpy(), values)
    return out


def load_view(s: RunStore, run_id: str, *, steps: bool = True,
              max_step_points: int = MAX_STEP_POINTS) -> RunView:
    """The run's data as of now. Raises RunNotFound. steps=False skips the per-step metrics
    (pages that plot per epoch only); steps are strided to at most max_step_points."""
    run = s.get_run(run_id)
    ops, edges, param_free = _space_info(run)
    index, alphas = _alpha_timeline(s, run_id, tuple(edges))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for artifact in run.get("artifacts") or ():
        by_kind.setdefault(str(artifact.get("kind", "")), []).append(dict(artifact))
    histories = {kind: _histories(s, run_id, by_kind.get(kind, ()), edges)
                 for kind in ("edge_logits", "edge_weights", "stage", "stage_cells")}
    stage = histories["stage"].get(None)
    return RunView(run=run, epochs=s.epoch_metrics(run_id),
                   steps=(s.step_metrics(run_id, max_points=max_step_points) if steps
                          else pd.DataFrame(columns=["step"])),
                   alpha_index=index, alphas=alphas, ops=ops, edges=edges,
                   param_free=param_free, betas=histories["edge_logits"],
                   edge_weights=histories["edge_weights"],
                   stage=stage[1][-1] if stage is not None else None,
                   stage_cells={c: v[-1] for c, (_, v) in histories["stage_cells"].items()},
                   logs=s.logs(run_id, limit=50),
                   alerts=s.alerts(run_id),
                   metrics=tuple(dict(m) for m in run.get("metrics") or ()),
                   artifacts={k: tuple(v) for k, v in by_kind.items()},
                   image_strips=_image_strips(s, run_id, by_kind.get("image_strip", ())))


def run_status(view: RunView) -> dict[str, Any]:
    """The keys of the run manager's RunStatus, estimated from the store (for runs no live
    manager in this process knows: CLI runs, finished runs): the ETA is the mean of the last
    five epoch times times the epochs left, 0 once the run is final."""
    run, ep = view.run, view.epochs
    times = ep["epoch_time"].to_numpy(np.float64)[-5:] if len(ep) else np.array([])
    epoch_time = float(np.mean(times)) if times.size else float("nan")
    spe = view.steps_per_epoch
    epochs = int(view.config.get("epochs", 0))
    done = int(run["epochs_done"])
    step = int(view.steps["step"].iloc[-1]) if len(view.steps) else done * spe
    return {"run_id": run["id"], "state": run["status"], "epoch": done, "epochs": epochs,
            "step": step, "steps_per_epoch": spe,
            "steps_per_s": spe / epoch_time if spe and times.size else float("nan"),
            "eta_s": (epochs - done) * epoch_time if is_active(run["status"]) else 0.0,
            "error": run["error"]}


def list_runs(s: RunStore, live_ids: set[str]) -> pd.DataFrame:
    """Every run, newest first, after active runs whose writer is gone (e.g. a CLI run whose
    process died) became "interrupted". live_ids: the runs this process runs or has queued.
    Each row also gets its declared headline metric: `headline` (the metric dict, None if
    undeclared) and `headline_best` (its best recorded value, unscaled; NaN if none), and its
    `kind` ("search" or "retrain"; a retrain's space is its recipe)."""
    s.mark_interrupted(live_ids=live_ids)
    runs = s.list_runs()
    declared = s.declarations()
    heads, bests, kinds, spaces = [], [], [], []
    for row in runs.itertuples(index=False):
        run = declared.get(row.id)
        if run is None:           # deleted since the listing was read
            heads.append(None)
            bests.append(float("nan"))
            kinds.append("")
            spaces.append(row.space)
            continue
        h = next((m for m in run.get("metrics") or () if m.get("headline")), None)
        heads.append(h)
        bests.append(float("nan") if h is None else _best(s, row, h))
        kinds.append(run_kind(run["config"]))
        spaces.append(run["config"].get("recipe") if kinds[-1] == RETRAIN else row.space)
    return runs.assign(headline=heads, headline_best=bests, kind=kinds,
                       space=pd.Series(spaces, index=runs.index, dtype=object))


def _best(s: RunStore, row: Any, metric: dict[str, Any]) -> float:
    """The store's summary column best_<name> where it keeps one (no epoch read); else the
    best of the run's epochs (max, or min where lower is better)."""
    summary = getattr(row, f"best_{metric['name']}", None)
    if summary is not None:
        return float(summary)
    epochs = s.epoch_metrics(row.id)
    values = (epochs[metric["name"]].to_numpy(np.float64) if metric["name"] in epochs
              else np.array([]))
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan")
    return float(values.max() if metric.get("higher_is_better", True) else values.min())
