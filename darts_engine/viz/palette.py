"""The dashboard's colours and shared figure layout: ONE op -> colour map used by every chart
and the cell DAG (parameter-free ops in a warm family, convolutions in a cool one, so
skip_connect taking over, the collapse RobustDARTS, Zela et al. 2020, describes, reads as the
page turning red), run colours for comparisons, indicator colours, and the small-multiples grid.
No named Plotly template: loading one deep-copies it (~30 ms a figure).
"""

from __future__ import annotations

import colorsys
from typing import Any

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
    "conv_3x3": "#1f77b4",          # trilevel SR cell ops
    "residual_block": "#2ca02c",
    "dws_block": "#17becf",
}
_OTHER_WARM, _OTHER_COOL = "#8c564b", "#4c72b0"
# Runs in comparisons: distinct from each other, not tied to any op.
RUN_COLORS = ("#2563eb", "#0d9488", "#9333ea", "#64748b")
TRAIN_COLOR, VAL_COLOR = "#475569", "#ea580c"
# α weights 0..1: white to dark slate, one fixed scale on every heatmap.
WEIGHT_SCALE = [[0.0, "#ffffff"], [0.35, "#94a3b8"], [1.0, "#0f172a"]]
EDGE_WEIGHT_LABEL = "edge β"  # PC-DARTS' per-edge weight, softmax(β) over a node's inputs
FONT = {"family": "Inter, Helvetica, Arial, sans-serif", "size": 12}


REFERENCE_COLOR = "#64748b"   # reference lines (bicubic on an SR run's PSNR curve)


def op_color(op: str) -> str:
    """The one colour of an operation, in every chart and in the cell DAG."""
    if op in OP_COLORS:
        return OP_COLORS[op]
    # trilevel SR: a width (teal) or an output depth (violet), darker = wider / deeper
    for prefix, hue, scale in (("width_", 0.47, 1.0), ("depth_", 0.72, 0.1)):
        if op.startswith(prefix) and op[len(prefix):].replace(".", "", 1).isdigit():
            t = min(1.0, float(op[len(prefix):]) * scale)
            r, g, b = colorsys.hls_to_rgb(hue, 0.8 - 0.5 * t, 0.6)
            return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
    return _OTHER_COOL if "conv" in op else _OTHER_WARM


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


# Indicators about one op take that op's colour; the rest a neutral slate.
INDICATOR_OPS = {"skip_mass": "skip_connect", "skip_count": "skip_connect", "none_mass": "none",
                 "none_max": "none", "none_share": "none"}
INDICATOR_COLOR, ALERT_COLOR = "#475569", "#dc2626"


def indicator_color(key: str) -> str:
    """'skip_mass.normal' -> skip_connect's colour; indicators about no single op: slate."""
    op = INDICATOR_OPS.get(key.partition(".")[0])
    return op_color(op) if op else INDICATOR_COLOR


PANEL_GAP_X, PANEL_GAP_Y = 0.12, 0.35  # gaps between small multiples, in panel units


def panel_origin(e: int, cols: int, rows: int) -> tuple[float, float]:
    """Lower-left corner of panel e on the shared canvas; each panel is 1 × 1 (time × weight)."""
    r, c = divmod(e, cols)
    return c * (1 + PANEL_GAP_X), (rows - 1 - r) * (1 + PANEL_GAP_Y)


def base_layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    heading = {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}}
    # No named template: loading one deep-copies it (~30 ms a figure).
    return {"title": heading if title else None, "height": height, "font": FONT,
            "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}, **extra}
