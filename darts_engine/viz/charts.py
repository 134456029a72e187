"""Figure builders for the dashboard: pure functions from arrays and DataFrames to Plotly figures
and Graphviz DOT text. No streamlit here (the dashboard calls these, tests check their JSON).

- One op -> colour map (`op_color`): parameter-free ops in a warm family, convolutions in a cool
  one, so skip_connect taking over (the collapse RobustDARTS, Zela et al. 2020, describes) reads
  as the page turning red.
- Arrays go into traces as NumPy arrays, never lists: Plotly serialises them as base64 binary.
- Figures with many panels are laid out by hand (axis domains) instead of `make_subplots` +
  `add_trace(row=, col=)`, which costs several milliseconds per trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..model.genotype import (
    CellTopology,
    Genotype,
    NB201Genotype,
    count_ops,
    derive_genotype,
    genotype_ops,
    parse_genotype,
    softmax,
)

Normalise = Callable[[np.ndarray], np.ndarray]  # raw α -> mixing weights over the last axis

# --- colours --------------------------------------------------------------------------------
# Warm: parameter-free ops (the collapse suspects). Cool: ops with weights (convolutions).
OP_COLORS: dict[str, str] = {
    "none": "#c9a227",
    "skip_connect": "#d62728",
    "max_pool_3x3": "#f28e2b",
    "avg_pool_3x3": "#b5651d",
    "noise": "#e377c2",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#2ca02c",
    "dil_conv_5x5": "#6a51a3",
    "nor_conv_1x1": "#17becf",
    "nor_conv_3x3": "#1f77b4",
}
_OTHER_WARM, _OTHER_COOL = "#8c564b", "#4c72b0"
# Runs in comparisons: distinct from each other, not tied to any op.
RUN_COLORS = ("#2563eb", "#0d9488", "#9333ea", "#64748b")
TRAIN_COLOR, VAL_COLOR = "#475569", "#ea580c"
# α weights 0..1: white to dark slate, one fixed scale on every heatmap.
WEIGHT_SCALE = [[0.0, "#ffffff"], [0.35, "#94a3b8"], [1.0, "#0f172a"]]
EDGE_WEIGHT_LABEL = "edge β"  # PC-DARTS' per-edge weight, softmax(β) over a node's inputs
_FONT = {"family": "Inter, Helvetica, Arial, sans-serif", "size": 12}


def op_color(op: str) -> str:
    """The one colour of an operation, in every chart and in the cell DAG."""
    if op in OP_COLORS:
        return OP_COLORS[op]
    return _OTHER_COOL if "conv" in op else _OTHER_WARM


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


# --- small numeric helpers --------------------------------------------------------------------
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


def param_free_mass(alphas: np.ndarray, ops: Sequence[str], param_free: Sequence[str],
                    normalise: Normalise = softmax) -> float:
    """Mean over edges of the mixing weight on parameter-free ops (the PF mass of
    RobustDARTS, Zela et al. 2020).
    alphas: raw logits (edges, ops); normalise: the run's relaxation (default softmax)."""
    if alphas.size == 0:
        return float("nan")
    cols = [k for k, op in enumerate(ops) if op in set(param_free)]
    return float(normalise(alphas)[:, cols].sum(axis=1).mean())


def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    heading = {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}}
    # No named template: loading one deep-copies it (~30 ms a figure).
    return {"title": heading if title else None, "height": height, "font": _FONT,
            "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}, **extra}


# --- α ----------------------------------------------------------------------------------------
def alpha_heatmap(weights: np.ndarray, ops: Sequence[str], edges: Sequence[str],
                  title: str = "", edge_weights: np.ndarray | None = None,
                  mask: np.ndarray | None = None) -> go.Figure:
    """The mixing weights (softmax(α) in DARTS) of one cell type as a heatmap: rows = edges,
    columns = ops in the space's order, colour fixed to 0..1. weights: (edges, ops).

    edge_weights: PC-DARTS' per-edge weight (edges,), softmax of β over each node's incoming
    edges (Xu et al. 2020, §3.3). Drawn as a narrow one-column strip right of the ops, in the
    same figure (same rows, same 0..1 scale; no extra chart for the live page to redraw).

    mask: (edges, ops) bool, False where the edge does not have the op (RobustDARTS S1): such
    cells are left empty, not drawn as a weight of 0.00."""
    w = np.asarray(weights, dtype=np.float32)
    if w.shape != (len(edges), len(ops)):
        raise ValueError(f"weights must have shape (edges={len(edges)}, ops={len(ops)}), "
                         f"got {w.shape}")
    text = np.char.mod("%.2f", w)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != w.shape:
            raise ValueError(f"mask must have shape {w.shape}, got {m.shape}")
        w = np.where(m, w, np.nan)
        text = np.where(m, text, "")
    trace = {"type": "heatmap", "z": w, "x": list(ops), "y": list(edges), "zmin": 0.0,
             "zmax": 1.0, "colorscale": WEIGHT_SCALE, "text": text, "texttemplate": "%{text}",
             "textfont": {"size": 10}, "xgap": 1, "ygap": 1, "hoverongaps": False,
             "colorbar": {"title": {"text": "weight"}, "thickness": 10, "len": 0.9},
             "hovertemplate": "edge %{y}<br>%{x}: %{z:.3f}<extra></extra>"}
    xaxis = {"side": "top", "tickangle": -30, "showgrid": False, "tickvals": list(ops),
             "ticktext": [f"<span style='color:{op_color(o)}'>{o}</span>" for o in ops]}
    extra: dict[str, Any] = {}
    data = [trace]
    if edge_weights is not None:
        b = np.asarray(edge_weights, dtype=np.float32)
        if b.shape != (len(edges),):
            raise ValueError(f"edge_weights must have shape (edges={len(edges)},), got {b.shape}")
        strip = 1.25 / (len(ops) + 2.5)  # a little wider than one op column
        xaxis["domain"] = [0.0, 1 - 1.4 * strip]
        extra["xaxis2"] = {"domain": [1 - strip, 1.0], "side": "top", "tickangle": -30,
                           "showgrid": False, "anchor": "y"}
        data.append({"type": "heatmap", "z": b[:, None], "x": [EDGE_WEIGHT_LABEL],
                     "y": list(edges), "xaxis": "x2", "zmin": 0.0, "zmax": 1.0,
                     "colorscale": WEIGHT_SCALE, "showscale": False,
                     "texttemplate": "%{z:.2f}", "textfont": {"size": 10}, "ygap": 1,
                     "hovertemplate": "edge %{y}<br>edge weight softmax(β): %{z:.3f}"
                                      "<extra></extra>"})
    layout = _layout(
        title, 70 + 24 * len(edges), xaxis=xaxis,
        yaxis={"autorange": "reversed", "showgrid": False, "tickfont": {"family": "monospace"}},
        **extra)
    return go.Figure(data=data, layout=layout)


PANEL_GAP_X, PANEL_GAP_Y = 0.12, 0.35  # gaps between small multiples, in panel units


def _panel_origin(e: int, cols: int, rows: int) -> tuple[float, float]:
    """Lower-left corner of panel e on the shared canvas; each panel is 1 × 1 (time × weight)."""
    r, c = divmod(e, cols)
    return c * (1 + PANEL_GAP_X), (rows - 1 - r) * (1 + PANEL_GAP_Y)


def edge_weight_lines(x: np.ndarray, weights: np.ndarray, ops: Sequence[str],
                      edges: Sequence[str], *, cols: int = 4, x_title: str = "epoch",
                      title: str = "") -> go.Figure:
    """Small multiples: one panel per edge, one line per op (its mixing weight over time).
    x: (T,), weights: (T, edges, ops) mixing weights; downsample before calling.

    The panels share one canvas: each op is ONE trace running through every panel (NaN between
    panels), so a DARTS cell is 8 traces, not 14 × 8. Building and serialising a trace costs
    far more than its points. Time is scaled to 0..1 inside each panel; hover shows the real
    time and weight."""
    w = np.asarray(weights, dtype=np.float64)
    xs = np.asarray(x, dtype=np.float64)
    if w.ndim != 3 or w.shape[1:] != (len(edges), len(ops)) or len(xs) != w.shape[0]:
        raise ValueError(f"weights must have shape (T={len(xs)}, edges={len(edges)}, "
                         f"ops={len(ops)}), got {w.shape}")
    n_t, n_e = w.shape[0], len(edges)
    cols = max(1, min(cols, n_e))
    rows = math.ceil(n_e / cols)
    span = xs[-1] - xs[0] if n_t > 1 else 0.0
    u = (xs - xs[0]) / span if span > 0 else np.zeros_like(xs)  # (T,) in 0..1
    origins = np.array([_panel_origin(e, cols, rows) for e in range(n_e)])  # (E, 2)
    gap = np.full((n_e, 1), np.nan)
    # (E, T+1) -> flat: every edge's points, then a NaN that breaks the line.
    canvas_x = np.hstack([origins[:, :1] + u[None, :], gap]).ravel()
    real_x = np.hstack([np.broadcast_to(xs, (n_e, n_t)), gap]).ravel()
    traces = []
    for k, op in enumerate(ops):
        wk = w[:, :, k].T                                                  # (E, T)
        canvas_y = np.hstack([origins[:, 1:] + wk, gap]).ravel()
        custom = np.stack([real_x, np.hstack([wk, gap]).ravel()], axis=1)   # (E*(T+1), 2)
        traces.append({
            "type": "scatter", "x": canvas_x, "y": canvas_y, "customdata": custom,
            "mode": "lines", "name": op, "line": {"color": op_color(op), "width": 1.6},
            "hovertemplate": f"{op}<br>{x_title} %{{customdata[0]:.2f}}: "
                             "%{customdata[1]:.3f}<extra></extra>"})
    frames, notes = [], []
    for e, (x0, y0) in enumerate(origins):
        frames.append({"type": "rect", "x0": x0, "x1": x0 + 1, "y0": y0, "y1": y0 + 1,
                       "layer": "below", "line": {"color": "#cbd5e1", "width": 1}})
        frames.append({"type": "line", "x0": x0, "x1": x0 + 1, "y0": y0 + 0.5, "y1": y0 + 0.5,
                       "layer": "below",
                       "line": {"color": "#e2e8f0", "width": 1, "dash": "dot"}})
        notes.append({"text": f"<b>{edges[e]}</b>", "x": x0 + 0.5, "y": y0 + 1,
                      "yanchor": "bottom", "showarrow": False,
                      "font": {"size": 11, "family": "monospace"}})
    if n_t:  # the time range, once, under the bottom-left panel
        x0, y0 = _panel_origin((rows - 1) * cols, cols, rows)
        for xpos, anchor, value in ((x0, "left", xs[0]), (x0 + 1, "right", xs[-1])):
            notes.append({"text": f"{x_title} {value:.3g}", "x": xpos, "y": y0,
                          "yanchor": "top", "xanchor": anchor, "showarrow": False,
                          "font": {"size": 10}})
    layout = _layout(
        title, 60 + 130 * rows, shapes=frames, annotations=notes, hovermode="closest",
        xaxis={"visible": False,
               "range": [-0.02, cols * (1 + PANEL_GAP_X) - PANEL_GAP_X + 0.02]},
        yaxis={"visible": False,
               "range": [-0.15, rows * (1 + PANEL_GAP_Y) - PANEL_GAP_Y + 0.05]},
        legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0})
    return go.Figure(data=traces, layout=layout)


# --- training curves --------------------------------------------------------------------------
def _faint_and_smooth(x: np.ndarray, y: np.ndarray, smoothing: float, color: str, name: str,
                      axes: tuple[str, str], legend: bool) -> list[dict[str, Any]]:
    base = {"type": "scatter", "x": x, "mode": "lines", "xaxis": axes[0], "yaxis": axes[1],
            "legendgroup": name}
    return [dict(base, y=y, name=f"{name} (raw)", showlegend=False, hoverinfo="skip",
                 line={"color": color, "width": 1}, opacity=0.25),
            dict(base, y=ema(y, smoothing), name=name, showlegend=legend,
                 line={"color": color, "width": 2})]


def training_curves(steps: pd.DataFrame, epochs: pd.DataFrame, steps_per_epoch: int,
                    smoothing: float = 0.6, title: str = "") -> go.Figure:
    """Loss (left) and accuracy (right) against epochs. Train: per step, faint raw curve under
    its moving average. Held-out: the full split evaluated after each epoch.
    steps: step_metrics rows (downsampled); epochs: epoch_metrics rows."""
    spe = max(1, steps_per_epoch)
    traces: list[dict[str, Any]] = []
    for col, (metric, axes) in enumerate((("loss", ("x", "y")), ("acc", ("x2", "y2")))):
        if len(steps):
            x = steps["step"].to_numpy(np.float64) / spe
            y = steps[f"train_{metric}"].to_numpy(np.float64)
        else:
            x = epochs["epoch"].to_numpy(np.float64) + 1
            y = epochs[f"train_{metric}"].to_numpy(np.float64)
        traces += _faint_and_smooth(x, y, smoothing, TRAIN_COLOR, "train", axes, col == 0)
        traces.append({
            "type": "scatter", "x": epochs["epoch"].to_numpy(np.float64) + 1,
            "y": epochs[f"val_{metric}"].to_numpy(np.float64), "mode": "lines+markers",
            "name": "held-out (per epoch)", "legendgroup": "val", "showlegend": col == 0,
            "xaxis": axes[0], "yaxis": axes[1], "line": {"color": VAL_COLOR, "width": 2},
            "marker": {"size": 4}})
    layout = _layout(
        title, 320, legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        xaxis={"domain": [0, 0.47], "title": {"text": "epoch"}},
        yaxis={"title": {"text": "loss"}},
        xaxis2={"domain": [0.53, 1], "anchor": "y2", "title": {"text": "epoch"}},
        yaxis2={"anchor": "x2", "title": {"text": "accuracy"}, "range": [0, 1.02],
                "tickformat": ".0%"})
    return go.Figure(data=traces, layout=layout)


def compare_curves(epochs: Mapping[str, pd.DataFrame], title: str = "") -> go.Figure:
    """Per-epoch curves of several runs overlaid: accuracy (left) and loss (right); held-out
    solid, train dotted; one colour per run (in the mapping's order)."""
    traces: list[dict[str, Any]] = []
    for i, (label, df) in enumerate(epochs.items()):
        x = df["epoch"].to_numpy(np.float64) + 1
        for metric, axes in (("acc", ("x", "y")), ("loss", ("x2", "y2"))):
            for split, dash in (("val", "solid"), ("train", "dot")):
                name = f"{label} · {'held-out' if split == 'val' else 'train'}"
                traces.append({
                    "type": "scatter", "x": x, "y": df[f"{split}_{metric}"].to_numpy(np.float64),
                    "mode": "lines", "name": name, "legendgroup": label,
                    "showlegend": metric == "acc", "xaxis": axes[0], "yaxis": axes[1],
                    "line": {"color": run_color(i), "dash": dash, "width": 2}})
    layout = _layout(title, 360, legend={"orientation": "h", "y": -0.18, "x": 0},
                     xaxis={"domain": [0, 0.47], "title": {"text": "epoch"}},
                     yaxis={"title": {"text": "accuracy"}, "range": [0, 1.02], "tickformat": ".0%"},
                     xaxis2={"domain": [0.53, 1], "anchor": "y2", "title": {"text": "epoch"}},
                     yaxis2={"anchor": "x2", "title": {"text": "loss"}})
    return go.Figure(data=traces, layout=layout)


# --- collapse indicators (indicators.py) -----------------------------------------------------
# Indicators about one op take that op's colour; the rest a neutral slate.
INDICATOR_OPS = {"skip_mass": "skip_connect", "skip_count": "skip_connect", "none_mass": "none",
                 "none_max": "none", "none_share": "none"}
INDICATOR_COLOR, ALERT_COLOR = "#475569", "#dc2626"


def indicator_color(key: str) -> str:
    """'skip_mass.normal' -> skip_connect's colour; indicators about no single op: slate."""
    op = INDICATOR_OPS.get(key.partition(".")[0])
    return op_color(op) if op else INDICATOR_COLOR


def _indicator_xy(epochs: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch + 1, value) of the epochs that measured `key` (column `ind_<key>`): indicators
    computed every k epochs are absent (NaN) in the others, which are dropped, not drawn as 0."""
    col = f"ind_{key}"
    if col not in epochs or epochs.empty:
        return np.zeros(0), np.zeros(0)
    x = epochs["epoch"].to_numpy(np.float64) + 1
    y = pd.to_numeric(epochs[col], errors="coerce").to_numpy(np.float64)
    keep = np.isfinite(y)
    return x[keep], y[keep]


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
        x0, y0 = _panel_origin(i, cols, rows)
        x, y = _indicator_xy(epochs, key)
        lo, hi = (float(y.min()), float(y.max())) if y.size else (0.0, 0.0)
        scale = (y - lo) / (hi - lo) * 0.9 + 0.05 if hi > lo else np.full_like(y, 0.5)
        gap = np.array([[np.nan, np.nan, np.nan, np.nan]])
        pts = np.stack([x0 + (x - 1) / span, y0 + scale, x, y], axis=1)   # (T, 4)
        by_color.setdefault(indicator_color(key), []).append(np.vstack([pts, gap]))
        frames.append({"type": "rect", "x0": x0, "x1": x0 + 1, "y0": y0, "y1": y0 + 1,
                       "layer": "below", "line": {"color": "#cbd5e1", "width": 1}})
        now = f"{y[-1]:.3g}" if y.size else "–"
        notes.append({"text": f"<b>{label}</b>", "x": x0, "y": y0 + 1.2, "xanchor": "left",
                      "yanchor": "bottom", "showarrow": False, "font": {"size": 10}})
        notes.append({"text": f"now {now} · range {lo:.3g}–{hi:.3g}" if y.size else "not yet",
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
    layout = _layout(
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
    label: the y-axis title (default the key). Runs that never measured it get no line;
    epochs that did not measure it are skipped."""
    traces = []
    for i, (run, df) in enumerate(epochs.items()):
        x, y = _indicator_xy(df, key)
        if x.size:
            traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines+markers",
                           "name": run, "line": {"color": run_color(i), "width": 2},
                           "marker": {"size": 5}})
    layout = _layout(title, 320, legend={"orientation": "h", "y": -0.2, "x": 0},
                     xaxis={"title": {"text": "epoch"}},
                     yaxis={"title": {"text": label or key}})
    return go.Figure(data=traces, layout=layout)


# --- the derived cell as a DAG ------------------------------------------------------------------
def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def cell_dot(edges: Sequence[tuple[str, int, int]], *, topology: CellTopology,
             weights: Sequence[float] | None = None,
             edge_weights: Sequence[float] | None = None, title: str = "") -> str:
    """Graphviz DOT of one derived cell. edges: (op, input j, target) as genotype_ops returns;
    weights: the softmax weight of each kept op (0..1), shown as the edge's width;
    edge_weights: PC-DARTS' weight of each kept edge (0..1, softmax of β over its node's
    inputs), shown as the width instead. The tooltip names both."""
    n_nodes = max([t for _, _, t in edges], default=topology.targets[-1]) + 1
    names = {t: _node_name(t, topology) for t in range(n_nodes)}
    inputs = tuple(range(topology.inputs))
    output = "c_{k}" if topology.darts_cell else None  # DARTS: the concat of the nodes
    lines = ["digraph cell {", '  rankdir=LR; bgcolor="transparent"; nodesep=0.3; ranksep=0.6;',
             ('  node [shape=box, style="rounded,filled", fillcolor="#f1f5f9", color="#94a3b8",'
              ' fontname="Helvetica", fontsize=16];'),
             '  edge [fontname="Helvetica", fontsize=15, arrowsize=0.8];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t; fontname=\"Helvetica\"; "
                     "fontsize=16;")
    for t, name in names.items():
        fill = "#dbeafe" if t in inputs else ("#fef3c7" if output is None and t == n_nodes - 1
                                              else "#f1f5f9")
        lines.append(f"  n{t} [label={_quote(name)}, fillcolor={_quote(fill)}];")
    for i, (op, j, target) in enumerate(edges):
        w = 1.0 if weights is None else float(weights[i])
        tip = op if weights is None else f"{op}: weight {w:.2f}"
        if edge_weights is not None:
            w = float(edge_weights[i])
            tip += f" · edge weight softmax(β) {w:.2f}"
        color = op_color(op)
        lines.append(f"  n{j} -> n{target} [label={_quote(op)}, tooltip={_quote(tip)}, "
                     f"color={_quote(color)}, fontcolor={_quote(color)}, "
                     f"penwidth={1 + 5 * w:.2f}];")
    if output is not None:
        lines.append(f'  out [label={_quote(output)}, fillcolor="#fef3c7"];')
        for t in sorted({t for _, _, t in edges}):
            lines.append(f'  n{t} -> out [color="#94a3b8", style=dashed, arrowsize=0.5];')
    lines.append("}")
    return "\n".join(lines)


def derive(space: str, ops: Sequence[str], alphas: Mapping[str, np.ndarray], *,
           normalise: Normalise | None = None,
           edge_weights: Mapping[str, np.ndarray] | None = None) -> Genotype:
    """The genotype of raw α (cell -> (edges, ops)) under the space's rule, the run's
    relaxation (`normalise`, default softmax) and PC-DARTS β (`edge_weights`) if any."""
    return derive_genotype(space, alphas, ops=tuple(ops), normalise=normalise,
                           edge_weights=edge_weights)


def cell_dots(genotype: Genotype, alphas: Mapping[str, np.ndarray] | None = None,
              ops: Sequence[str] = (), normalise: Normalise = softmax,
              edge_weights: Mapping[str, np.ndarray] | None = None) -> dict[str, str]:
    """DOT text per cell type of a genotype; with raw α (and the op order), edge widths show
    each kept op's mixing weight (normalise: the run's relaxation, default softmax). With
    PC-DARTS edge weights (cell -> (edges,), softmax of β per node) widths show those."""
    topology = genotype.topology
    out = {}
    for cell, edges in genotype_ops(genotype).items():
        rows = [topology.row(j, t) for _, j, t in edges]
        weights = beta = None
        if alphas is not None and cell in alphas:
            p = normalise(alphas[cell])  # (edges, ops)
            weights = [p[r, list(ops).index(op)] for r, (op, _, _) in zip(rows, edges)]
        if edge_weights is not None and cell in edge_weights:
            beta = [edge_weights[cell][r] for r in rows]
        out[cell] = cell_dot(edges, topology=topology, weights=weights, edge_weights=beta,
                             title=_cell_title(cell, topology))
    return out


def _cell_title(cell: str, topology: CellTopology) -> str:
    return f"{cell} cell" if len(topology.cell_types) > 1 else cell


def stage_cells(cells: Mapping[str, np.ndarray], ops: Sequence[str], topology: CellTopology
                ) -> list[tuple[int, str, dict[str, str]]]:
    """LFR-DARTS: the cell derived at each stage, from one epoch's `lfr_cells_<t>` arrays
    (cell type -> (stages, edges, ops), 0/1 mixing weights in α's layout; lfr.py).
    Returns (stage, genotype text, cell type -> DOT) per stage reached, shallow to deep; cell
    types that do not occur at a stage's depth (all-zero rows) are left out. `topology`: the
    space's; NB201's text is `|op~0|+...`, the DARTS cell's `normal=[(op, j), ...]` per type."""
    n_stages = max((w.shape[0] for w in cells.values()), default=0)
    out = []
    for k in range(n_stages):
        kept: dict[str, list[tuple[str, int, int]]] = {}
        for cell, w in cells.items():
            ends = topology.ends
            rows, cols = np.nonzero(w[k])  # one kept op per kept edge, rows ascending
            if rows.size:
                kept[cell] = [(ops[o], *ends[e]) for e, o in zip(rows, cols)]
        if not kept:
            continue
        if topology.darts_cell:
            text = ", ".join(f"{c}={[(op, j) for op, j, _ in e]!r}" for c, e in kept.items())
        else:
            edges = kept["cell"]
            text = str(NB201Genotype(tuple(tuple((op, j) for op, j, t in edges if t == target)
                                           for target in sorted({t for *_, t in edges}))))
        dots = {c: cell_dot(e, topology=topology,
                            title=f"stage {k + 1} · {_cell_title(c, topology)}")
                for c, e in kept.items()}
        out.append((k, text, dots))
    return out


# --- comparing runs ---------------------------------------------------------------------------
def _node_name(j: int, topology: CellTopology) -> str:
    """DARTS: inputs c_{k-2}, c_{k-1}, nodes 0..3; NB201: nodes 0..3."""
    if not topology.darts_cell:
        return str(j)
    return f"c_{{k-{topology.inputs - j}}}" if j < topology.inputs else str(j - topology.inputs)


def genotype_diff(genotypes: Mapping[str, str], ops: Sequence[str]) -> pd.DataFrame:
    """One row per (cell, node), one column per run: the node's kept inputs as `op ← input`,
    sorted by input (so the order of DARTS' top-2 does not count as a difference), plus a
    `differs` column. Genotypes that cannot be read show as empty."""
    parsed: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    topology: CellTopology | None = None
    for label, text in genotypes.items():
        try:
            g = parse_genotype(text, ops=ops)
        except ValueError:
            parsed[label] = {}
            continue
        topology = topology if topology is not None and topology.darts_cell else g.topology
        parsed[label] = genotype_ops(g)
    order = list(topology.cell_types) if topology is not None else []
    keys = sorted({(cell, t) for cells in parsed.values() for cell, edges in cells.items()
                   for _, _, t in edges},
                  key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k))
    rows = []
    for cell, t in keys:
        row: dict[str, Any] = {"cell": cell, "node": _node_name(t, topology)}
        for label, cells in parsed.items():
            kept = sorted((j, op) for op, j, target in cells.get(cell, []) if target == t)
            row[label] = ", ".join(f"{op} ← {_node_name(j, topology)}" for j, op in kept)
        row["differs"] = len({row[label] for label in parsed}) > 1
        rows.append(row)
    return pd.DataFrame(rows, columns=["cell", "node", *genotypes, "differs"])


def config_differences(configs: Mapping[str, Mapping[str, Any]],
                       ignore: Sequence[str] = ("name",)) -> list[str]:
    """Config fields whose values differ between the runs, in field order."""
    fields: list[str] = []
    for cfg in configs.values():
        fields += [k for k in cfg if k not in fields and k not in ignore]
    return [k for k in fields if len({repr(c.get(k)) for c in configs.values()}) > 1]


def summary_table(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Rows = measures, columns = runs. Each run: {"config", "epochs_done", "val_acc" (array per
    epoch), "wall_time" (s), "genotype" (text), "alphas" (cell -> raw, latest), "ops",
    "param_free", "cell" (the cell type to summarise), optionally "normalise"}. Config fields
    that differ come last as rows named `config · <field>`. Values are display strings."""
    table: dict[str, dict[str, Any]] = {}
    for label, r in runs.items():
        acc = np.asarray(r["val_acc"], dtype=np.float64)
        cell = r["cell"]
        try:
            g = parse_genotype(r["genotype"], ops=r["ops"])
            skips = str(count_ops(g, cell, {"skip_connect"}))
            pf_ops = str(count_ops(g, cell, set(r["param_free"])))
        except ValueError:
            skips = pf_ops = "–"
        alphas = r["alphas"].get(cell)
        pf = (math.nan if alphas is None else
              param_free_mass(alphas, r["ops"], r["param_free"], r.get("normalise", softmax)))
        table[label] = {
            "algorithm": r["config"].get("algorithm", ""),
            "epochs done": f"{r['epochs_done']} / {r['config'].get('epochs', '?')}",
            "final val accuracy": _pct(acc[-1] if acc.size else math.nan),
            "best val accuracy": _pct(np.nanmax(acc) if acc.size and np.isfinite(acc).any()
                                      else math.nan),
            f"skip_connect in {cell} cell": skips,
            f"parameter-free ops in {cell} cell": pf_ops,
            f"parameter-free α mass ({cell})": "–" if math.isnan(pf) else f"{pf:.2f}",
            "wall time": format_duration(r["wall_time"]),
        }
    configs = {label: r["config"] for label, r in runs.items()}
    for name in config_differences(configs):
        if name == "algorithm":
            continue
        for label in runs:
            table[label][f"config · {name}"] = str(configs[label].get(name))
    return pd.DataFrame(table)


def _pct(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def format_duration(seconds: float | None) -> str:
    """`1m 05s`, `2h 03m`, or `–` for unknown."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    s = round(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"
