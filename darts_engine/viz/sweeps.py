"""Figures of a sweep (a grid of config values × seeds, issue 16): seed bands and the collapse
phase diagram. Whether DARTS collapses depends on its settings and its seed (RobustDARTS,
Zela et al. 2020, §3-4 vary the search space, the data and L2 on the weights; Liu et al. 2019,
§3.1 already report several seeds per cell), so a what-if is read over seeds, never one run.

Data extraction is split from drawing (as Optuna's visualization package does):
`seed_groups` finds the runs that differ only in their seed, `band` reduces their curves to a mean
and a band per epoch, `end_of_run_values` reads the quantity a phase diagram shows from each
run's last epoch row, `phase_points` and `phase_table` put the runs on the grid;
`seed_band_figure` and `phase_diagram_figure` draw. Plain tables in, go.Figure out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..registries import SPACES
from .palette import base_layout, run_color

# Config fields that never change what a search computes: a run's label, its thread count, its
# device (same seed, same numbers up to float noise), how often it reports, where data lives.
IGNORED_FIELDS = ("name", "threads", "device", "log_every", "alpha_every", "data_root")
BAND_KINDS = ("minmax", "sd")
BAND_ALPHA, RUN_ALPHA = 0.2, 0.35   # band fill and raw-run line opacity, over the group's hue
# Phase diagram cells: pale to dark red, the colour collapse has on every other chart.
# A blank cell (no finished run) stays white with a grey "–", so the scale starts off white.
PHASE_SCALE = [[0.0, "#fef3c7"], [0.5, "#f59e0b"], [1.0, "#991b1b"]]


# --- seed groups ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedGroup:
    """Runs whose configs are equal except `seed` (and IGNORED_FIELDS)."""

    label: str                      # the fields that differ between groups: "arch_lr=0.001"
    point: dict[str, Any]           # those fields and their values in this group
    run_ids: tuple[str, ...]        # in the order given
    seeds: tuple[Any, ...]          # each run's seed, same order


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def seed_groups(runs: Sequence[Mapping[str, Any]],
                ignore: Sequence[str] = IGNORED_FIELDS) -> list[SeedGroup]:
    """Groups of runs that differ only in seed, in the order their first run appears.

    runs: dicts with `run_id`, `config` (field -> value) and optionally `sweep_point` (the swept
    fields of the run, in the sweep's order; they come first in the label). A group's label names
    the fields whose values differ between groups ("arch_lr=0.001 · arch_weight_decay=0"); with
    a single group there is nothing to tell apart, and the label is "all runs"."""
    skip = {"seed", *ignore}
    keys: dict[str, list[int]] = {}   # config without seed -> positions in runs
    shared: list[dict[str, Any]] = []
    for i, run in enumerate(runs):
        cfg = {k: v for k, v in run["config"].items() if k not in skip}
        keys.setdefault(repr(sorted(cfg.items(), key=lambda kv: kv[0])), []).append(i)
        shared.append(cfg)
    firsts = [members[0] for members in keys.values()]
    order: list[str] = []
    for i in firsts:                  # swept fields first, in the sweep's order; then the rest
        order += [k for k in runs[i].get("sweep_point") or {} if k not in order]
    for i in firsts:
        order += [k for k in shared[i] if k not in order]
    differ = [k for k in order
              if len({repr(shared[i].get(k)) for i in firsts}) > 1] if len(firsts) > 1 else []
    groups = []
    for members in keys.values():
        point = {k: shared[members[0]].get(k) for k in differ}
        label = " · ".join(f"{k}={_fmt(v)}" for k, v in point.items()) or "all runs"
        groups.append(SeedGroup(label, point, tuple(str(runs[i]["run_id"]) for i in members),
                                tuple(runs[i]["config"].get("seed") for i in members)))
    return groups


# --- bands --------------------------------------------------------------------------------------
def band(curves: Mapping[str, pd.DataFrame], column: str, kind: str = "minmax") -> pd.DataFrame:
    """Per epoch over runs: mean, lo, hi and n (how many runs have a value there).

    curves: run id -> its epoch table (`epoch` and `column`). Runs of different lengths are
    aligned by epoch; an epoch's statistics use the runs that reached it and measured it (NaN,
    e.g. an indicator computed every k epochs, does not count). kind "minmax": lo/hi are the
    smallest and largest value; "sd": mean ∓ the sample standard deviation (ddof=1), 0 when
    n = 1. Epochs no run has are absent; a column no run has gives an empty table."""
    if kind not in BAND_KINDS:
        raise ValueError(f"band kind must be one of {BAND_KINDS}, got {kind!r}")
    parts = [pd.DataFrame({"epoch": df["epoch"].to_numpy(np.int64),
                           "v": pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)})
             for df in curves.values() if column in df and "epoch" in df]
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"epoch": [], "v": []})
    long = long[np.isfinite(long["v"].to_numpy(np.float64))]
    g = long.groupby("epoch")["v"]
    out = pd.DataFrame({"mean": g.mean(), "n": g.count()})
    if kind == "minmax":
        out["lo"], out["hi"] = g.min(), g.max()
    else:
        sd = g.std(ddof=1).fillna(0.0)          # pandas gives NaN for n = 1
        out["lo"], out["hi"] = out["mean"] - sd, out["mean"] + sd
    out = out.reset_index()
    return out.astype({"epoch": np.int64, "n": np.int64})[["epoch", "mean", "lo", "hi", "n"]]


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _axis_title(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def seed_band_figure(groups: Sequence[SeedGroup], curves: Mapping[str, pd.DataFrame],
                     column: str, kind: str = "minmax", show_runs: bool = False, *,
                     label: str = "", unit: str = "", scale: float = 1.0,
                     title: str = "") -> go.Figure:
    """Per seed group a mean line and a translucent band of the same hue (min–max or ±1 sd,
    `band`), and each run as a thin faint line when show_runs. Any epoch column: a metric
    (`val_acc`) or an indicator (`ind_pf_mass.normal`). x: epoch + 1, as on the other curves;
    y: value × scale (a metric declaration's display multiplier), titled `label (unit)`."""
    spread = "min–max" if kind == "minmax" else "±1 sd"
    traces: list[dict[str, Any]] = []
    for i, group in enumerate(groups):
        color = run_color(i)
        mine = {r: curves[r] for r in group.run_ids if r in curves}
        b = band(mine, column, kind)
        if b.empty:
            continue
        x = b["epoch"].to_numpy(np.float64) + 1
        lo, hi, mean = (b[c].to_numpy(np.float64) * scale for c in ("lo", "hi", "mean"))
        name = f"{group.label} (n={len(mine)})"
        traces.append({"type": "scatter", "x": np.concatenate([x, x[::-1]]),
                       "y": np.concatenate([hi, lo[::-1]]), "fill": "toself", "mode": "lines",
                       "fillcolor": _rgba(color, BAND_ALPHA), "line": {"width": 0},
                       "name": f"{group.label} · {spread}", "legendgroup": group.label,
                       "showlegend": False, "hoverinfo": "skip"})
        if show_runs:
            for run_id, df in mine.items():
                if column not in df:
                    continue
                traces.append({"type": "scatter", "x": df["epoch"].to_numpy(np.float64) + 1,
                               "y": pd.to_numeric(df[column], errors="coerce")
                               .to_numpy(np.float64) * scale, "mode": "lines",
                               "name": run_id, "legendgroup": group.label, "showlegend": False,
                               "line": {"color": _rgba(color, RUN_ALPHA), "width": 1},
                               "hovertemplate": f"{run_id}: %{{y:.4g}}<extra></extra>"})
        traces.append({"type": "scatter", "x": x, "y": mean, "mode": "lines", "name": name,
                       "legendgroup": group.label, "line": {"color": color, "width": 2},
                       "customdata": np.stack([lo, hi, b["n"].to_numpy(np.float64)], axis=1),
                       "hovertemplate": f"epoch %{{x:.0f}}: mean %{{y:.4g}}, {spread} "
                       "%{customdata[0]:.4g}–%{customdata[1]:.4g} (n=%{customdata[2]:.0f})"
                       "<extra></extra>"})
    layout = base_layout(title, 340, legend={"orientation": "h", "y": -0.2, "x": 0},
                         hovermode="closest", xaxis={"title": {"text": "epoch"}},
                         yaxis={"title": {"text": _axis_title(label or column, unit)}})
    return go.Figure(data=traces, layout=layout)


# --- end-of-run quantities --------------------------------------------------------------------
# What a phase diagram can colour by: name -> (label, unit, display scale, what it reads in the
# last epoch row). The headline's label, unit and scale come from the run's declaration.
QUANTITIES: dict[str, tuple[str, str, float, str]] = {
    "pf_mass": ("parameter-free mass", "", 1.0, "ind_pf_mass.<cell>"),
    "entropy": ("decidedness (normalised entropy)", "", 1.0, "ind_entropy.<cell>"),
    "skip_count": ("skip_connect in the derived cell", "", 1.0, "ind_skip_count.<cell>"),
    "headline": ("headline metric", "", 1.0, "the declared headline metric, e.g. val_acc"),
    "test_acc": ("retrain test accuracy", "%", 100.0,
                 "test_acc (a retrain's headline, or joined into a search's table)"),
    "truth": ("true CIFAR-10 test accuracy", "%", 1.0, "truth_cifar10 (see with_truth)"),
}
INDICATOR_QUANTITIES = ("pf_mass", "entropy", "skip_count")   # per cell type
TRUTH_COLUMN = "truth_{dataset}"


def with_truth(epochs: pd.DataFrame, test: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The epoch table with one truth_<dataset> column per dataset (runs/truth_view.py
    TruthSeries.test: the derived cell's true test accuracy per epoch, percent)."""
    return epochs.assign(**{TRUTH_COLUMN.format(dataset=d): np.asarray(v, np.float64)
                            for d, v in test.items()})


def _parts(table: Any) -> tuple[pd.DataFrame, Sequence[Mapping[str, Any]], Mapping[str, Any]]:
    """(epochs, metric declarations, config) of a RunView-like object or a bare epoch table."""
    if isinstance(table, pd.DataFrame):
        return table, (), {}
    return table.epochs, tuple(table.metrics), dict(table.config)


def quantity_column(quantity: str, epochs: pd.DataFrame, metrics: Sequence[Mapping[str, Any]] = (),
                    config: Mapping[str, Any] | None = None) -> str | None:
    """The epoch column a quantity reads in this run, None if the run has none.

    Indicators (pf_mass, entropy, skip_count, or one with its cell: "pf_mass.reduce") read
    ind_<key>; a bare per-cell name reads the space's headline cell (DARTS: normal, NB201:
    its one cell), else the first cell the table has. "headline": the declared headline metric's
    column (val_acc when nothing is declared). "test_acc": a retrain's held-out test accuracy.
    "truth": truth_cifar10 (with_truth)."""
    if quantity == "headline":
        head = next((m for m in metrics if m.get("headline")), None)
        col = str(head["name"]) if head is not None else "val_acc"
    elif quantity == "test_acc":
        col = "test_acc"
    elif quantity == "truth":
        col = TRUTH_COLUMN.format(dataset="cifar10")
    else:
        col = f"ind_{quantity}"
        if col not in epochs:
            space = (config or {}).get("space")
            cell = SPACES.get(space).headline if space in SPACES else None
            cells = [c for c in epochs.columns if str(c).startswith(f"{col}.")]
            col = f"{col}.{cell}" if f"{col}.{cell}" in cells else (cells[0] if cells else col)
    return col if col in epochs else None


def _check(quantity: str) -> None:
    if quantity not in QUANTITIES and quantity.partition(".")[0] not in INDICATOR_QUANTITIES:
        raise ValueError(f"quantity must be one of {tuple(QUANTITIES)} (an indicator may name its "
                         f"cell: 'pf_mass.reduce'), got {quantity!r}")


def available_quantities(tables: Mapping[str, Any]) -> list[str]:
    """The QUANTITIES at least one of the runs has a column for (a page's choices)."""
    parts = [_parts(t) for t in tables.values()]
    return [q for q in QUANTITIES if any(quantity_column(q, *p) for p in parts)]


def quantity_axis(quantity: str, metrics: Sequence[Mapping[str, Any]] = ()
                  ) -> tuple[str, str, float]:
    """(label, unit, scale) to draw a quantity with: the headline's from its declaration
    (metrics: a run's metric dicts), an indicator's cell named in the label."""
    _check(quantity)
    name, _, cell = quantity.partition(".")
    label, unit, scale, _ = QUANTITIES[name]
    head = next((m for m in metrics if m.get("headline")), None)
    if name == "headline" and head is not None:
        return str(head["label"]), str(head.get("unit", "")), float(head.get("scale", 1.0))
    return (f"{label} ({cell} cell)" if cell else label), unit, scale


def end_of_run_values(tables: Mapping[str, Any], quantity: str) -> pd.DataFrame:
    """One row per run: run_id, value (the quantity in the run's last epoch row that has one,
    unscaled; NaN if it never recorded it), the column read, and that row's epoch (-1 if none).

    tables: run id -> a RunView (runs/views.py: epochs, metrics, config) or a bare epoch table.
    Quantities and the columns they read: QUANTITIES, quantity_column."""
    _check(quantity)
    rows = []
    for run_id, table in tables.items():
        epochs, metrics, config = _parts(table)
        col = quantity_column(quantity, epochs, metrics, config)
        values = (pd.to_numeric(epochs[col], errors="coerce").to_numpy(np.float64) if col
                  else np.zeros(0))
        done = np.flatnonzero(np.isfinite(values))
        last = int(done[-1]) if done.size else -1
        rows.append({"run_id": run_id, "value": values[last] if last >= 0 else np.nan,
                     "column": col or "",
                     "epoch": int(epochs["epoch"].iloc[last]) if last >= 0 else -1})
    return pd.DataFrame(rows, columns=["run_id", "value", "column", "epoch"])


# --- the phase diagram --------------------------------------------------------------------------
def phase_points(runs: Sequence[Mapping[str, Any]], values: pd.DataFrame,
                 fields: Sequence[str]) -> pd.DataFrame:
    """One row per run: run_id, each swept field's value (from the run's `sweep_point`, else its
    config) and `value` (end_of_run_values; NaN for a run not in it). runs: as seed_groups.
    Give unfinished runs no value: a cell is blank until one of its runs has finished."""
    by_id = dict(zip(values["run_id"].astype(str), values["value"], strict=True))
    rows = []
    for run in runs:
        point = run.get("sweep_point") or {}
        rows.append({"run_id": str(run["run_id"]),
                     **{f: point[f] if f in point else run["config"].get(f) for f in fields},
                     "value": by_id.get(str(run["run_id"]), np.nan)})
    return pd.DataFrame(rows, columns=["run_id", *fields, "value"])


@dataclass(frozen=True)
class PhaseTable:
    """Grids over the swept values: rows = y values, columns = x values, in the swept order.
    Statistics over the seeds (runs) of a cell that have a value; NaN where none has."""

    x_field: str
    y_field: str | None             # None: one swept field, one row (index [""])
    mean: pd.DataFrame
    sd: pd.DataFrame                # sample sd (ddof=1), 0 for one run
    lo: pd.DataFrame                # min over the cell's runs
    hi: pd.DataFrame                # max
    count: pd.DataFrame             # runs with a value (0 for a blank cell)
    run_ids: pd.DataFrame           # tuple of those runs' ids per cell

    def spread(self, kind: str = "sd") -> pd.DataFrame:
        """The grid of spreads: the sd, or the min–max range (hi - lo)."""
        if kind not in BAND_KINDS:
            raise ValueError(f"spread kind must be one of {BAND_KINDS}, got {kind!r}")
        return self.sd if kind == "sd" else self.hi - self.lo


def _ordered(values: Sequence[Any] | None, column: pd.Series) -> list[Any]:
    seen = list(values) if values is not None else []
    return seen + [v for v in dict.fromkeys(column.tolist()) if v not in seen]


def phase_table(points: pd.DataFrame, x_field: str, y_field: str | None, value: str = "value",
                *, x_values: Sequence[Any] | None = None,
                y_values: Sequence[Any] | None = None) -> PhaseTable:
    """Seed statistics of `value` per grid cell of (x_field, y_field), from one row per run
    (phase_points). Axis order: x_values / y_values (the sweep's grid, so points no run has
    finished yet still get their blank cell), then any other value in order of appearance.
    Rows whose value is NaN (unfinished, or never recorded) count nowhere."""
    for f in (x_field, y_field, value, "run_id"):
        if f is not None and f not in points:
            raise ValueError(f"points has no column {f!r}: give one row per run with run_id, "
                             f"the swept fields and the value ({list(points.columns)})")
    xs = _ordered(x_values, points[x_field])
    ys = _ordered(y_values, points[y_field]) if y_field is not None else [""]
    grids = {k: pd.DataFrame(np.nan, index=pd.Index(ys, dtype=object),
                             columns=pd.Index(xs, dtype=object))
             for k in ("mean", "sd", "lo", "hi", "count")}
    ids = pd.DataFrame([[() for _ in xs] for _ in ys], index=grids["mean"].index,
                       columns=grids["mean"].columns, dtype=object)
    grids["count"].loc[:, :] = 0
    values = pd.to_numeric(points[value], errors="coerce").to_numpy(np.float64)
    run_ids = points["run_id"].astype(str).to_numpy()
    px = points[x_field].to_numpy(object)
    py = points[y_field].to_numpy(object) if y_field is not None else np.full(len(points), "")
    for j, x in enumerate(xs):
        for i, y in enumerate(ys):
            keep = (px == x) & (py == y) & np.isfinite(values)
            v = values[keep]
            ids.iat[i, j] = tuple(run_ids[keep])
            grids["count"].iat[i, j] = v.size
            if v.size:
                grids["mean"].iat[i, j] = v.mean()
                grids["sd"].iat[i, j] = v.std(ddof=1) if v.size > 1 else 0.0
                grids["lo"].iat[i, j], grids["hi"].iat[i, j] = v.min(), v.max()
    return PhaseTable(x_field, y_field, grids["mean"], grids["sd"], grids["lo"], grids["hi"],
                      grids["count"].astype(np.int64), ids)


def phase_diagram_figure(table: PhaseTable, *, label: str = "", unit: str = "",
                         scale: float = 1.0, spread: str = "sd", title: str = "") -> go.Figure:
    """A heatmap over the swept fields: each cell's seed mean (× scale) as colour and as text,
    the run count and spread (sd or min–max) on hover; blank (null) where no run has finished.
    Traces: the heatmap (z, text, customdata[i][j] = the cell's run ids), then "cells", one
    clickable point per cell with runs (customdata: its run ids; a page opens them on Compare),
    then "not finished", the blank cells' hover. Axes are categorical in the swept order; one
    swept field gives one row."""
    if spread not in BAND_KINDS:
        raise ValueError(f"spread must be one of {BAND_KINDS}, got {spread!r}")
    mean = table.mean.to_numpy(np.float64) * scale
    n = table.count.to_numpy(np.int64)
    name = _axis_title(label or "value", unit)
    one_row = table.y_field is None
    xs = [_fmt(v) for v in table.mean.columns]
    ys = [name] if one_row else [_fmt(v) for v in table.mean.index]
    text, hover = [], []
    for i, y in enumerate(ys):
        text.append([f"{m:.3g}" if np.isfinite(m) else "" for m in mean[i]])
        row = []
        for j, x in enumerate(xs):
            where = f"{table.x_field} = {x}" + (f"<br>{table.y_field} = {y}"
                                                if table.y_field is not None else "")
            if not n[i, j]:
                row.append(f"{where}<br>no finished run yet")
                continue
            sd, lo, hi = (g.iat[i, j] * scale for g in (table.sd, table.lo, table.hi))
            what = f"± {sd:.3g} (sd)" if spread == "sd" else f"min–max {lo:.3g}–{hi:.3g}"
            row.append(f"{where}<br>{name}: {mean[i, j]:.4g} {what}<br>n = {n[i, j]} runs")
        hover.append(row)
    ids = [[list(table.run_ids.iat[i, j]) for j in range(len(xs))] for i in range(len(ys))]
    heat = {"type": "heatmap", "z": np.where(np.isfinite(mean), mean, None).tolist(),
            "x": xs, "y": ys, "text": text, "texttemplate": "%{text}", "hovertext": hover,
            "hoverinfo": "skip", "colorscale": PHASE_SCALE, "xgap": 2, "ygap": 2,
            "customdata": ids, "colorbar": {"title": {"text": name}}}
    # Streamlit's on_select returns nothing for heatmap cells (streamlit/streamlit#8760,
    # #8933): one transparent marker per cell with runs carries the hover and the run ids, so
    # a click selects a point whose customdata a page can open on Compare.
    cells = [(i, j) for i in range(len(ys)) for j in range(len(xs)) if n[i, j]]
    picks = {"type": "scatter", "mode": "markers", "name": "cells", "showlegend": False,
             "x": [xs[j] for _, j in cells], "y": [ys[i] for i, _ in cells],
             "customdata": [ids[i][j] for i, j in cells],
             "hovertext": [hover[i][j] for i, j in cells], "hoverinfo": "text",
             "marker": {"symbol": "square", "size": 30, "color": "rgba(0,0,0,0)"}}
    blanks = [(i, j) for i in range(len(ys)) for j in range(len(xs)) if not n[i, j]]
    empty = {"type": "scatter", "mode": "markers+text", "name": "not finished",
             "showlegend": False, "x": [xs[j] for _, j in blanks],
             "y": [ys[i] for i, _ in blanks], "text": ["–"] * len(blanks),
             "textfont": {"color": "#94a3b8"}, "textposition": "middle center",
             "hovertext": [hover[i][j] for i, j in blanks], "hoverinfo": "text",
             "marker": {"symbol": "square", "size": 30, "color": "rgba(0,0,0,0)"}}
    axis = {"type": "category", "categoryorder": "array"}    # the swept order, not sorted
    axis = {**axis, "showgrid": False, "zeroline": False}
    layout = base_layout(title, 160 if one_row else 120 + 48 * len(ys), hovermode="closest",
                         plot_bgcolor="#ffffff",
                         xaxis={**axis, "categoryarray": xs, "title": {"text": table.x_field}},
                         yaxis={**axis, "categoryarray": ys,
                                "title": {"text": table.y_field or ""}})
    return go.Figure(data=[heat, picks, empty], layout=layout)
