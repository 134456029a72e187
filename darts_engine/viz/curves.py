"""Curves over training: step and epoch curves (EMA-smoothed, downsampled), runs side by side,
and the collapse indicators (indicators.py) as small multiples or one indicator across runs.
Data extraction (`downsample`, `ema`, `indicator_xy`) is split from drawing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..registries import INDICATORS
from .palette import (
    ALERT_COLOR,
    PANEL_GAP_X,
    PANEL_GAP_Y,
    REFERENCE_COLOR,
    TRAIN_COLOR,
    VAL_COLOR,
    base_layout,
    indicator_color,
    panel_origin,
    run_color,
)


def downsample(n: int, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` evenly spread rows out of n, always keeping the last."""
    if n <= max_points:
        return np.arange(n)
    stride = math.ceil(n / max_points)
    return np.arange(n - 1, -1, -stride)[::-1]


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's slider); NaNs are skipped, not spread.
    smoothing 0 returns the values; 0.99 is very smooth."""
    v = np.asarray(values, dtype=np.float64)
    if smoothing <= 0 or v.size == 0:
        return v.copy()
    out = np.full_like(v, np.nan)
    acc, weight = 0.0, 0.0
    for i, x in enumerate(v):
        if np.isnan(x):
            continue
        acc = smoothing * acc + (1 - smoothing) * x
        weight = smoothing * weight + (1 - smoothing)
        out[i] = acc / weight
    return out


def _faint_and_smooth(x: np.ndarray, y: np.ndarray, smoothing: float, color: str, name: str,
                      axes: tuple[str, str], legend: bool) -> list[dict[str, Any]]:
    base = {"type": "scatter", "x": x, "mode": "lines", "xaxis": axes[0], "yaxis": axes[1],
            "legendgroup": name}
    return [dict(base, y=y, name=f"{name} (raw)", showlegend=False, hoverinfo="skip",
                 line={"color": color, "width": 1}, opacity=0.25),
            dict(base, y=ema(y, smoothing), name=name, showlegend=legend,
                 line={"color": color, "width": 2})]


def _quality_axis(metrics: Sequence[Mapping[str, Any]]) -> tuple[str, str | None, list[dict],
                                                                   dict[str, Any]]:
    """(held-out column, train column or None, reference declarations, y-axis layout) of the
    right-hand panel from a run's metric declarations: its headline, the train-split metric
    beside it, and the metrics declared `reference_for` the headline (bicubic for SR). No
    declarations, or the accuracy headline: classification's accuracy axis."""
    head = next((m for m in metrics if m.get("headline")), None)
    if head is None or head["name"] == "val_acc":
        return "val_acc", "train_acc", [], _ACCURACY_AXIS
    train = next((m["name"] for m in metrics if m.get("split") == "train"
                  and m.get("unit") == head.get("unit")), None)
    refs = [dict(m) for m in metrics if m.get("reference_for") == head["name"]]
    if head.get("unit") == "%":   # an accuracy (fractions): the same axis as val_acc's
        return head["name"], train, refs, _ACCURACY_AXIS
    unit = f" ({head['unit']})" if head.get("unit") else ""
    return head["name"], train, refs, {"title": {"text": f"{head['label']}{unit}"}}


_ACCURACY_AXIS = {"title": {"text": "accuracy"}, "range": [0, 1.02], "tickformat": ".0%"}


def _scaled(df: pd.DataFrame, col: str | None, metrics: Sequence[Mapping[str, Any]]
            ) -> np.ndarray:
    if col is None or col not in df:
        return np.full(len(df), np.nan)
    meta = next((m for m in metrics if m["name"] == col), {})
    # accuracies stay fractions: the accuracy axis formats them as %
    scale = 1.0 if meta.get("unit", "%") == "%" else float(meta.get("scale", 1.0))
    return pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64) * scale


def training_curves(steps: pd.DataFrame, epochs: pd.DataFrame, steps_per_epoch: int,
                    smoothing: float = 0.6, title: str = "",
                    metrics: Sequence[Mapping[str, Any]] = ()) -> go.Figure:
    """Loss (left) and the run's headline (right, accuracy for classification) against epochs.
    Train: per step, faint raw curve under its moving average. Held-out: the full split
    evaluated after each epoch. Reference lines (`reference_for` the headline, e.g. bicubic's
    PSNR) dashed. steps: step_metrics rows (downsampled); epochs: epoch_metrics rows;
    metrics: the run's declarations (none: classification's)."""
    spe = max(1, steps_per_epoch)
    held, train_col, refs, yaxis2 = _quality_axis(metrics)
    traces: list[dict[str, Any]] = []
    ex = epochs["epoch"].to_numpy(np.float64) + 1
    for col, (pair, axes) in enumerate(((("train_loss", "val_loss"), ("x", "y")),
                                        ((train_col, held), ("x2", "y2")))):
        train, val = pair
        if len(steps) and (train is None or train in steps):
            x = steps["step"].to_numpy(np.float64) / spe
            y = _scaled(steps, train, metrics)
        else:
            x, y = ex, _scaled(epochs, train, metrics)
        traces += _faint_and_smooth(x, y, smoothing, TRAIN_COLOR, "train", axes, col == 0)
        traces.append({
            "type": "scatter", "x": ex, "y": _scaled(epochs, val, metrics),
            "mode": "lines+markers",
            "name": "held-out (per epoch)", "legendgroup": "val", "showlegend": col == 0,
            "xaxis": axes[0], "yaxis": axes[1], "line": {"color": VAL_COLOR, "width": 2},
            "marker": {"size": 4}})
    for ref in refs:
        traces.append({
            "type": "scatter", "x": ex, "y": _scaled(epochs, ref["name"], metrics),
            "mode": "lines", "name": ref["label"], "xaxis": "x2", "yaxis": "y2",
            "line": {"color": REFERENCE_COLOR, "width": 2, "dash": "dash"}})
    layout = base_layout(
        title, 320, legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        xaxis={"domain": [0, 0.47], "title": {"text": "epoch"}},
        yaxis={"title": {"text": "loss"}},
        xaxis2={"domain": [0.53, 1], "anchor": "y2", "title": {"text": "epoch"}},
        yaxis2={"anchor": "x2", **yaxis2})
    return go.Figure(data=traces, layout=layout)


def compare_curves(epochs: Mapping[str, pd.DataFrame], title: str = "",
                   metrics: Sequence[Mapping[str, Any]] = ()) -> go.Figure:
    """Per-epoch curves of several runs overlaid: the headline (left; accuracy unless the runs
    declare another, e.g. PSNR, `metrics` being one run's declarations) and loss (right);
    held-out solid, train dotted; one colour per run (in the mapping's order); reference lines
    of the headline (bicubic) dashed grey, once."""
    held, train_col, refs, yaxis = _quality_axis(metrics)
    traces: list[dict[str, Any]] = []
    for i, (label, df) in enumerate(epochs.items()):
        x = df["epoch"].to_numpy(np.float64) + 1
        for cols, axes, first in (((held, train_col), ("x", "y"), True),
                                  (("val_loss", "train_loss"), ("x2", "y2"), False)):
            for col, split, dash in ((cols[0], "val", "solid"), (cols[1], "train", "dot")):
                name = f"{label} · {'held-out' if split == 'val' else 'train'}"
                traces.append({
                    "type": "scatter", "x": x, "y": _scaled(df, col, metrics),
                    "mode": "lines", "name": name, "legendgroup": label,
                    "showlegend": first, "xaxis": axes[0], "yaxis": axes[1],
                    "line": {"color": run_color(i), "dash": dash, "width": 2}})
    if epochs and refs:
        label, df = next(iter(epochs.items()))
        for ref in refs:
            traces.append({
                "type": "scatter", "x": df["epoch"].to_numpy(np.float64) + 1,
                "y": _scaled(df, ref["name"], metrics), "mode": "lines",
                "name": ref["label"], "xaxis": "x", "yaxis": "y",
                "line": {"color": REFERENCE_COLOR, "width": 2, "dash": "dash"}})
    layout = base_layout(title, 360, legend={"orientation": "h", "y": -0.18, "x": 0},
                         xaxis={"domain": [0, 0.47], "title": {"text": "epoch"}},
                         yaxis=yaxis,
                         xaxis2={"domain": [0.53, 1], "anchor": "y2", "title": {"text": "epoch"}},
                         yaxis2={"anchor": "x2", "title": {"text": "loss"}})
    return go.Figure(data=traces, layout=layout)


UNIT_NAMES = {"pp": "percentage points", "%": "%"}


def indicator_unit(key: str) -> tuple[float, str]:
    """(display scale, unit) of an indicator key ('disc_gap', 'skip_mass.normal'), from its
    declaration (monitor/indicators.py): accuracy gaps recorded as fractions are shown in
    percentage points; (1, '') for unitless ones and keys no indicator declares."""
    name = key.partition(".")[0]
    if name not in INDICATORS:
        return 1.0, ""
    indicator = INDICATORS.get(name)
    return indicator.scale, indicator.unit


def format_indicator(key: str, value: float) -> str:
    """A recorded (unscaled) indicator value as displayed: '1.22 pp', '97.5%', '0.431'."""
    if value is None or not np.isfinite(value):
        return "–"
    scale, unit = indicator_unit(key)
    return f"{scale * float(value):.3g}{_suffix(unit)}"


def _suffix(unit: str) -> str:
    return unit if unit in ("", "%") else f" {unit}"


def indicator_axis_title(key: str, label: str) -> str:
    """`label`, with the indicator's unit spelled out: 'Discretisation gap (percentage
    points)'."""
    unit = indicator_unit(key)[1]
    return f"{label} ({UNIT_NAMES.get(unit, unit)})" if unit else label


def indicator_xy(epochs: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch + 1, value) of the epochs that measured `key` (column `ind_<key>`): indicators
    computed every k epochs are absent (NaN) in the others, which are dropped, not drawn as 0.
    Values are in display units (indicator_unit: accuracy gaps in percentage points)."""
    col = f"ind_{key}"
    if col not in epochs or epochs.empty:
        return np.zeros(0), np.zeros(0)
    x = epochs["epoch"].to_numpy(np.float64) + 1
    y = pd.to_numeric(epochs[col], errors="coerce").to_numpy(np.float64)
    keep = np.isfinite(y)
    return x[keep], y[keep] * indicator_unit(key)[0]


def indicator_panel(epochs: pd.DataFrame, keys: Sequence[str], labels: Sequence[str],
                    alert_epochs: Sequence[int] = (), *, cols: int = 4) -> go.Figure:
    """Small multiples: one sparkline panel per indicator key, ONE figure (a live page redraws
    it every second; twenty separate charts cost twenty round trips). Same canvas trick as
    edge_weight_lines: panels are unit squares, one trace per colour runs through all of them.

    Every panel shares the epoch axis (1 .. last epoch); its own values are scaled to its
    min..max, written under its title. Red dashed lines mark the epochs an alert fired
    (alert_epochs 0-based, drawn at epoch + 1). Epochs that did not measure a key are skipped."""
    if len(labels) != len(keys):
        raise ValueError(f"one label per key: {len(keys)} keys, {len(labels)} labels")
    n = len(keys)
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    last = float(epochs["epoch"].max()) + 1 if len(epochs) else 1.0
    span = max(last - 1.0, 1.0)                     # epochs 1..last -> 0..1 in a panel
    by_color: dict[str, list[np.ndarray]] = {}
    frames, notes = [], []
    for i, (key, label) in enumerate(zip(keys, labels, strict=True)):
        x0, y0 = panel_origin(i, cols, rows)
        x, y = indicator_xy(epochs, key)
        lo, hi = (float(y.min()), float(y.max())) if y.size else (0.0, 0.0)
        scale = (y - lo) / (hi - lo) * 0.9 + 0.05 if hi > lo else np.full_like(y, 0.5)
        gap = np.array([[np.nan, np.nan, np.nan, np.nan]])
        pts = np.stack([x0 + (x - 1) / span, y0 + scale, x, y], axis=1)   # (T, 4)
        by_color.setdefault(indicator_color(key), []).append(np.vstack([pts, gap]))
        frames.append({"type": "rect", "x0": x0, "x1": x0 + 1, "y0": y0, "y1": y0 + 1,
                       "layer": "below", "line": {"color": "#cbd5e1", "width": 1}})
        suffix = _suffix(indicator_unit(key)[1])
        now = f"{y[-1]:.3g}{suffix}" if y.size else "–"
        notes.append({"text": f"<b>{label}</b>", "x": x0, "y": y0 + 1.2, "xanchor": "left",
                      "yanchor": "bottom", "showarrow": False, "font": {"size": 10}})
        notes.append({"text": f"now {now} · range {lo:.3g}–{hi:.3g}{suffix}" if y.size
                      else "not yet",
                      "x": x0, "y": y0 + 1, "xanchor": "left", "yanchor": "bottom",
                      "showarrow": False, "font": {"size": 9, "color": "#64748b"}})
        for e in sorted({int(e) for e in alert_epochs}):
            xe = x0 + e / span
            frames.append({"type": "line", "x0": xe, "x1": xe, "y0": y0, "y1": y0 + 1,
                           "line": {"color": ALERT_COLOR, "width": 1.2, "dash": "dash"}})
    traces = []
    for color, parts in by_color.items():
        pts = np.vstack(parts)
        traces.append({"type": "scatter", "x": pts[:, 0], "y": pts[:, 1],
                       "customdata": pts[:, 2:], "mode": "lines+markers", "showlegend": False,
                       "line": {"color": color, "width": 1.8}, "marker": {"size": 3},
                       "hovertemplate": "epoch %{customdata[0]:.0f}: %{customdata[1]:.4g}"
                                        "<extra></extra>"})
    notes.append({"text": f"epochs 1–{last:.0f}", "x": 0, "y": -0.05, "xanchor": "left",
                  "yanchor": "top", "showarrow": False, "font": {"size": 9}})
    layout = base_layout(
        "", 30 + 150 * rows, shapes=frames, annotations=notes, hovermode="closest",
        showlegend=False, margin={"l": 4, "r": 4, "t": 10, "b": 20},
        xaxis={"visible": False,
               "range": [-0.02, cols * (1 + PANEL_GAP_X) - PANEL_GAP_X + 0.02]},
        # the top row's titles sit above its panel, inside the range (plotly hides
        # annotations placed outside it)
        yaxis={"visible": False, "fixedrange": True,
               "range": [-0.15, rows * (1 + PANEL_GAP_Y) - PANEL_GAP_Y + 0.35]})
    return go.Figure(data=traces, layout=layout)


def indicator_overlay(epochs: Mapping[str, pd.DataFrame], key: str, label: str = "",
                      title: str = "") -> go.Figure:
    """One indicator of several runs overlaid, one colour per run (in the mapping's order);
    label: the y-axis title (default the key), with the indicator's unit if it has one. Runs
    that never measured it get no line; epochs that did not measure it are skipped."""
    traces = []
    for i, (run, df) in enumerate(epochs.items()):
        x, y = indicator_xy(df, key)
        if x.size:
            traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines+markers",
                           "name": run, "line": {"color": run_color(i), "width": 2},
                           "marker": {"size": 5}})
    layout = base_layout(title, 320, legend={"orientation": "h", "y": -0.2, "x": 0},
                     xaxis={"title": {"text": "epoch"}},
                     yaxis={"title": {"text": indicator_axis_title(key, label or key)}})
    return go.Figure(data=traces, layout=layout)
