"""Figures of the architecture weights α: the (edges × ops) heatmap, the edge-weight small
multiples over time, and the parameter-free mass they summarise (RobustDARTS, Zela et al. 2020).
Arrays go into traces as NumPy arrays, never lists: Plotly serialises them as base64 binary.
Panels are laid out by hand (axis domains) instead of `make_subplots` + `add_trace(row=,
col=)`, which costs several milliseconds per trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..model.genotype import softmax
from .palette import (
    EDGE_WEIGHT_LABEL,
    PANEL_GAP_X,
    PANEL_GAP_Y,
    WEIGHT_SCALE,
    base_layout,
    op_color,
    panel_origin,
)

Normalise = Callable[[np.ndarray], np.ndarray]  # raw α -> mixing weights over the last axis


def param_free_mass(alphas: np.ndarray, ops: Sequence[str], param_free: Sequence[str],
                    normalise: Normalise = softmax) -> float:
    """Mean over edges of the mixing weight on parameter-free ops (the PF mass of
    RobustDARTS, Zela et al. 2020).
    alphas: raw logits (edges, ops); normalise: the run's relaxation (default softmax)."""
    if alphas.size == 0:
        return float("nan")
    cols = [k for k, op in enumerate(ops) if op in set(param_free)]
    return float(normalise(alphas)[:, cols].sum(axis=1).mean())


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
    layout = base_layout(
        title, 70 + 24 * len(edges), xaxis=xaxis,
        yaxis={"autorange": "reversed", "showgrid": False, "tickfont": {"family": "monospace"}},
        **extra)
    return go.Figure(data=data, layout=layout)


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
    origins = np.array([panel_origin(e, cols, rows) for e in range(n_e)])  # (E, 2)
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
        x0, y0 = panel_origin((rows - 1) * cols, cols, rows)
        for xpos, anchor, value in ((x0, "left", xs[0]), (x0 + 1, "right", xs[-1])):
            notes.append({"text": f"{x_title} {_tick(value)}", "x": xpos, "y": y0,
                          "yanchor": "top", "xanchor": anchor, "showarrow": False,
                          "font": {"size": 10}})
    layout = base_layout(
        title, 60 + 130 * rows, shapes=frames, annotations=notes, hovermode="closest",
        xaxis={"visible": False,
               "range": [-0.02, cols * (1 + PANEL_GAP_X) - PANEL_GAP_X + 0.02]},
        yaxis={"visible": False,
               "range": [-0.15, rows * (1 + PANEL_GAP_Y) - PANEL_GAP_Y + 0.05]},
        legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0})
    return go.Figure(data=traces, layout=layout)


def _tick(value: float) -> str:
    """A time written under the small multiples: one decimal, none when whole (α snapshots
    fall mid-epoch, at step / steps per epoch: 0.714 reads as 0.7, 8.0 as 8)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
