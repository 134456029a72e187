"""Seed bands for the Compare page (issue 16): runs that differ only in their seed are drawn as
one group, the per-epoch mean with a band (min–max or ±1 sd) and, on request, the raw runs.
Not a page itself: pages/compare.py calls `seed_bands_section`.

Any recorded curve can be banded: the metrics the runs declare (their task's, read from the
declaration, so a PSNR or a −MSE headline works as val_acc does) and every collapse indicator
their epoch tables hold. The grouping and the figure are darts_engine/viz/sweeps.py
(`seed_groups`, `seed_band_figure`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from darts_engine.runs.store import RunNotFound
from darts_engine.runs.views import RunView
from darts_engine.viz.curves import UNIT_NAMES, indicator_unit
from darts_engine.viz.sweeps import seed_band_figure, seed_groups
from pages import common

KINDS = {"minmax": "min–max", "sd": "±1 sd"}


def _metric_columns(views: dict[str, RunView]) -> dict[str, dict[str, Any]]:
    """Epoch column -> its metric declaration, for the declared metrics some run recorded; the
    runs' headline first."""
    declared: dict[str, dict[str, Any]] = {}
    for view in views.values():
        for m in sorted(view.metrics, key=lambda m: not m.get("headline")):
            if m["name"] in view.epochs and m["name"] not in declared:
                declared[m["name"]] = m
    return declared


def _sweep_point(run_id: str) -> dict[str, Any] | None:
    try:
        tag = common.store().sweep_of(run_id)
    except RunNotFound:  # deleted while the page drew
        return None
    return tag["point"] if tag else None


def seed_bands_section(views: dict[str, RunView], labels: dict[str, str]) -> None:
    """Mean ± band per group of the compared runs that differ only in seed; nothing when no two
    runs do. views: run id -> its RunView; labels: run id -> its short label (the raw runs')."""
    runs = [{"run_id": labels.get(rid, rid), "config": v.config,
             "sweep_point": _sweep_point(rid)} for rid, v in views.items()]
    groups = seed_groups(runs)
    if not any(len(g.run_ids) > 1 for g in groups):
        return
    st.subheader("Seed bands")
    metrics = _metric_columns(views)
    indicators = ["ind_" + k for k in common.indicator_keys(
        {c for v in views.values() for c in v.epochs.columns})]
    columns = [*metrics, *indicators]
    if not columns:
        st.caption("The bands appear when the first epoch ends.")
        return

    def label(column: str) -> str:
        if column in metrics:
            return str(metrics[column].get("label") or column)
        return common.indicator_label(column[len("ind_"):])

    left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    column = left.selectbox("Curve", columns, key="seedbands_column", format_func=label,
                            help="A metric the runs declare, or a collapse indicator.")
    kind = mid.radio("Band", list(KINDS), key="seedbands_kind", format_func=KINDS.get,
                     horizontal=True, help="Over the seeds of a group, per epoch: the smallest "
                     "to the largest value, or the mean ∓ the sample standard deviation.")
    show_runs = right.checkbox("Raw runs", key="seedbands_raw",
                               help="Also draw each run of a group as a thin line.")
    if column in metrics:
        unit, scale = str(metrics[column].get("unit", "")), float(metrics[column].get("scale", 1.0))
    else:  # an indicator: accuracy gaps in percentage points, as on Live and Compare
        scale, unit = indicator_unit(column[len("ind_"):])
        unit = UNIT_NAMES.get(unit, unit)
    curves = {labels.get(rid, rid): v.epochs for rid, v in views.items()}
    st.plotly_chart(seed_band_figure(groups, curves, column, kind, show_runs, label=label(column),
                                     unit=unit, scale=scale),
                    key="seedbands_chart")
    sizes = ", ".join(f"{g.label}: {len(g.run_ids)} seeds" for g in groups)
    st.caption(f"Groups of runs whose configs differ only in seed ({sizes}).")
