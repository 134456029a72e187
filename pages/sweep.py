"""Sweep: one sweep (a grid of config values × seeds, darts_engine/runs/sweep.py) at a glance.
Its progress per grid point (queued / running / done / failed), its runs (each an ordinary run:
open it on Live), and the collapse phase diagram: a heatmap over two swept fields of an
end-of-run quantity (parameter-free mass, entropy, skip count, the headline metric, ...), the
seed mean per cell with the spread on hover, in the spirit of RobustDARTS (Zela et al. 2020,
§4, where collapse is read over settings and seeds). Clicking a cell opens its runs on Compare.
Refreshes itself while any run of the sweep is active. `?sweep=ID` selects the sweep.
"""

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from darts_engine.runs.schema import SweepNotFound
from darts_engine.runs.states import RunState, is_active, names
from darts_engine.runs.store import RunNotFound
from darts_engine.runs.sweep import SweepSpec, point_label, sweep_progress
from darts_engine.runs.views import RunView
from darts_engine.viz.sweeps import (
    BAND_KINDS,
    available_quantities,
    end_of_run_values,
    phase_diagram_figure,
    phase_points,
    phase_table,
    quantity_axis,
)
from pages import common

REFRESH_S = 2.0
SPREADS = {"sd": "sd", "minmax": "min–max"}
# columns of the progress table: what a person asks first, then the rarer states
FIRST_STATES = ("queued", "running", "completed", "failed")


def _sweep_label(row: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M")
    return f"{row['name'] or row['id']} · {row['runs']} runs · {when}"


def _select() -> None:
    st.query_params["sweep"] = st.session_state["sweep_id"]


def _pick_sweep(sweeps: pd.DataFrame) -> str | None:
    """The sweep in the URL (or picked), newest first; None when the URL names a missing one."""
    ids = sweeps["id"].tolist()
    wanted = str(st.query_params.get("sweep", ""))
    if wanted and wanted not in ids:
        st.warning(f"Sweep `{wanted}` is not in the store at {common.store().home} (it may have "
                   "been deleted with its last run). Pick another below.")
    elif wanted:
        st.session_state["sweep_id"] = wanted
    labels = {r["id"]: _sweep_label(r) for r in sweeps.to_dict("records")}
    picked = st.selectbox("Sweep", ids, key="sweep_id", format_func=labels.get,
                          on_change=_select, help="Every sweep in the store, newest first.")
    if picked is not None and not wanted:
        st.query_params["sweep"] = picked
    return picked if not wanted or wanted in ids else None


# --- progress and runs --------------------------------------------------------------------------
def progress_section(sweep_id: str, runs: pd.DataFrame) -> None:
    st.subheader("Progress")
    progress = sweep_progress(common.store(), sweep_id)
    counts = runs["status"].value_counts()
    for col, state in zip(st.columns(len(FIRST_STATES)), FIRST_STATES, strict=True):
        col.metric("done" if state == RunState.COMPLETED.value else state,
                   int(counts.get(state, 0)))
    done = int(counts.get(RunState.COMPLETED.value, 0))
    st.progress(done / max(1, len(runs)), text=f"{done} of {len(runs)} runs done")
    shown = [*FIRST_STATES, *(s for s in names() if s not in FIRST_STATES and progress[s].any())]
    table = pd.DataFrame({"grid point": [point_label(p) for p in progress["point"]],
                          **{s: progress[s] for s in shown}, "runs": progress["runs"]})
    st.dataframe(table, hide_index=True, width="stretch")


def runs_section(runs: pd.DataFrame) -> None:
    st.subheader("Runs")
    heads = [h for h in dict.fromkeys(runs["headline"]) if h]
    head = heads[0] if len(heads) == 1 else "headline"
    st.dataframe(pd.DataFrame({
        "status": runs["status"],
        "grid point": [point_label(p) for p in runs["point"]],
        "seed": runs["seed"],
        "epochs": [f"{d} / {e}" for d, e in zip(runs["epochs_done"], runs["epochs"],
                                                strict=True)],
        head: runs["headline_value"],
        "live": [f"/live?run={r}" for r in runs["id"]],
        "id": runs["id"],
        "error": runs["error"].fillna(""),
    }), hide_index=True, width="stretch", column_config={
        "live": st.column_config.LinkColumn("live", display_text="open on Live"),
        head: st.column_config.NumberColumn(head, format="%.4g",
                                            help="At the run's last recorded epoch (unscaled)."),
    })


# --- the phase diagram --------------------------------------------------------------------------
def _finished_views(runs: pd.DataFrame) -> dict[str, RunView]:
    """The completed runs' views: a cell is blank until one of its runs has finished."""
    views = {}
    for rid in runs.loc[runs["status"] == RunState.COMPLETED.value, "id"]:
        try:
            views[rid] = common.load_run(rid, steps=False)
        except RunNotFound:  # deleted since the listing was read
            continue
    return views


def _axes(fields: list[str]) -> tuple[str, str | None]:
    """x and y among the swept fields (y: None for a one-field sweep)."""
    if len(fields) == 1:
        return fields[0], None
    left, right = st.columns(2)
    x = left.selectbox("x axis", fields, key="sweep_x", help="A swept field.")
    others = [f for f in fields if f != x]
    if st.session_state.get("sweep_y") not in others:
        st.session_state["sweep_y"] = others[0]
    y = right.selectbox("y axis", others, key="sweep_y", help="Another swept field.")
    return x, y


def phase_section(spec: SweepSpec, runs: pd.DataFrame) -> None:
    st.subheader("Collapse phase diagram")
    fields = spec.fields()
    views = _finished_views(runs)
    if not views:
        st.caption("The diagram fills in as runs finish: each cell is the seed mean of an "
                   "end-of-run quantity at one grid point.")
        return
    quantities = available_quantities(views)
    if not quantities:
        st.caption("The finished runs recorded none of the quantities a phase diagram shows.")
        return
    metrics = next(iter(views.values())).metrics

    def q_label(q: str) -> str:
        return quantity_axis(q, metrics)[0]

    top = st.columns([2, 1], vertical_alignment="bottom")
    quantity = top[0].selectbox("Colour by (end of run)", quantities, key="sweep_quantity",
                                format_func=q_label,
                                help="Read from each run's last epoch, then averaged over "
                                     "the seeds of a grid point.")
    spread = top[1].radio("Spread on hover", list(BAND_KINDS), key="sweep_spread",
                          format_func=SPREADS.get, horizontal=True)
    x, y = _axes(fields)
    # a third swept field (or a second with one axis) is held at one value
    held = {}
    for f in (f for f in fields if f not in (x, y)):
        values = _grid_values(spec, f)
        held[f] = st.selectbox(f"at {f}", values, key=f"sweep_at_{f}",
                               format_func=_fmt, help="A swept field not on an axis.")
    run_rows = [{"run_id": rid, "sweep_point": p, "config": {}}
                for rid, p in zip(runs["id"], runs["point"], strict=True)
                if all(p.get(f) == v for f, v in held.items())]
    values = end_of_run_values(views, quantity)
    table = phase_table(phase_points(run_rows, values, [f for f in (x, y) if f]), x, y,
                        x_values=_grid_values(spec, x),
                        y_values=_grid_values(spec, y) if y else None)
    label, unit, scale = quantity_axis(quantity, metrics)
    event = st.plotly_chart(phase_diagram_figure(table, label=label, unit=unit, scale=scale,
                                                 spread=spread),
                            key="sweep_phase", on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False})
    st.caption("Each cell: the mean over the grid point's finished seeds; hover for the spread "
               "and the run count, click a cell to open its runs on Compare. "
               "“–”: no run of that point has finished yet.")
    _open_picked(event)


def _grid_values(spec: SweepSpec, name: str) -> list[Any]:
    if spec.points is None:
        return list(spec.grid[name])
    return list(dict.fromkeys(p[name] for p in spec.points))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _open_picked(event: Any) -> None:
    """A clicked cell (a point of the "cells" trace, whose customdata is the cell's run ids)
    opens those runs on Compare. Heatmap cells themselves report no selection in Streamlit."""
    points = (getattr(event, "selection", None) or {}).get("points", [])
    for p in points:
        ids = p.get("customdata")
        if isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids):
            st.switch_page("pages/compare.py", query_params={"runs": ",".join(ids[:4])})


# --- the page ------------------------------------------------------------------------------------
def _panel(sweep_id: str, was_active: bool) -> None:
    store = common.store()
    try:
        spec = SweepSpec.from_dict(store.get_sweep(sweep_id)["spec"])
        runs = store.sweep_runs(sweep_id)
    except SweepNotFound:
        st.warning(f"Sweep `{sweep_id}` was deleted.")
        return
    if any(is_active(s) for s in runs["status"]) != was_active:
        st.rerun()  # switch the auto-refresh on or off
    st.caption(f"Swept: {', '.join(spec.fields())} · seeds "
               f"{', '.join(map(str, spec.seeds))} · every run is an ordinary run (Live, Runs, "
               "export).")
    if runs.empty:
        st.info("This sweep has no runs left (they were deleted).")
        return
    progress_section(sweep_id, runs)
    phase_section(spec, runs)
    runs_section(runs)


common.require_app()
st.header("Sweep")
sweeps = common.store().list_sweeps()
if sweeps.empty:
    if wanted := st.query_params.get("sweep"):
        st.warning(f"Sweep `{wanted}` is not in the store at {common.store().home} (it may "
                   "have been deleted with its last run).")
    st.info("No sweeps yet. On **Launch**, switch to **Sweep** to run a grid of settings × "
            "seeds, or use `.venv/bin/python -m darts_engine sweep` from a terminal.")
    st.page_link("pages/launch.py", label="Go to Launch", icon=":material/rocket_launch:")
    st.stop()
sweep_id = _pick_sweep(sweeps)
if sweep_id is None:
    st.stop()
active = any(is_active(s) for s in common.store().sweep_runs(sweep_id)["status"])
st.fragment(_panel, run_every=REFRESH_S if active else None)(sweep_id, active)
