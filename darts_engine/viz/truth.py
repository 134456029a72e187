"""Ground-truth figures (NAS-Bench-201, Dong & Yang 2020 §2): the supernet's headline accuracy
beside the true test accuracy of the cell it derived, per epoch, with the truth's protocol
written on the plot; and the true CIFAR-10 accuracy of several runs overlaid. Plain arrays in
(runs/truth_view.py extracts them), go.Figure out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from .palette import VAL_COLOR, base_layout, run_color

# One colour per NB201 dataset (truth.base.DATASETS), distinct from the supernet's curve.
DATASET_COLORS = {"cifar10": "#2563eb", "cifar100": "#0d9488", "ImageNet16-120": "#9333ea"}
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                  "ImageNet16-120": "ImageNet16-120"}


def _protocol_note(protocol: str) -> dict:
    return {"text": f"true test accuracy: {protocol}", "xref": "paper", "yref": "paper",
            "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom", "showarrow": False,
            "font": {"size": 11}}


def truth_curves(epochs: np.ndarray, headline: np.ndarray, headline_label: str,
                 test: Mapping[str, np.ndarray], protocol: str) -> go.Figure:
    """x: epoch (1-based); the supernet's headline (percent, dashed) and each dataset's true
    test accuracy of the derived cell (percent, NaN gaps where the table has no row)."""
    x = np.asarray(epochs, np.float64) + 1
    traces = [{"type": "scatter", "x": x, "y": np.asarray(headline, np.float64), "mode":
               "lines+markers", "name": f"supernet {headline_label}",
               "line": {"color": VAL_COLOR, "dash": "dash", "width": 2}}]
    for dataset, values in test.items():
        traces.append({"type": "scatter", "x": x, "y": np.asarray(values, np.float64),
                       "mode": "lines+markers", "name": f"true test · "
                       f"{DATASET_LABELS.get(dataset, dataset)}",
                       "line": {"color": DATASET_COLORS.get(dataset, "#64748b"), "width": 2}})
    layout = base_layout("", 340, legend={"orientation": "h", "y": -0.22, "x": 0},
                         xaxis={"title": {"text": "epoch"}},
                         yaxis={"title": {"text": "accuracy (%)"}, "range": [0, 101]},
                         annotations=[_protocol_note(protocol)])
    layout["margin"]["t"] = 30
    return go.Figure(data=traces, layout=layout)


def truth_overlay(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], protocol: str,
                  dataset: str = "cifar10") -> go.Figure:
    """label -> (epochs, true test accuracy in percent): one line per run, in mapping order."""
    traces = [{"type": "scatter", "x": np.asarray(ep, np.float64) + 1,
               "y": np.asarray(values, np.float64), "mode": "lines+markers", "name": label,
               "line": {"color": run_color(i), "width": 2}}
              for i, (label, (ep, values)) in enumerate(runs.items())]
    layout = base_layout("", 320, legend={"orientation": "h", "y": -0.22, "x": 0},
                         xaxis={"title": {"text": "epoch"}},
                         yaxis={"title": {"text": f"true {DATASET_LABELS.get(dataset, dataset)} "
                                                  "test accuracy (%)"}, "range": [0, 101]},
                         annotations=[_protocol_note(protocol)])
    layout["margin"]["t"] = 30
    return go.Figure(data=traces, layout=layout)
