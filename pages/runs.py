"""Runs: every run in the store (dashboard and CLI alike) with stop, resume, rename, delete,
export and import. Open one in Live, or several in Compare."""

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from darts_engine.runs.bundle import export_bundle, import_bundle
from darts_engine.runs.states import RunState, is_active
from darts_engine.runs.store import EXPORT_FORMATS, RunNotFound, StoreError
from darts_engine.viz.tables import format_duration
from pages import common


def _best_columns(runs: pd.DataFrame) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """One "best <label>" column per headline metric the runs declare (scaled for display;
    empty where a run headlines another metric), with its number format."""
    columns: dict[str, list[float]] = {}
    formats: dict[str, Any] = {}
    for i, (h, best) in enumerate(zip(runs["headline"], runs["headline_best"], strict=True)):
        if h is None:
            continue
        name = f"best {h['label']}"
        columns.setdefault(name, [float("nan")] * len(runs))[i] = float(h["scale"]) * best
        unit = str(h.get("unit", "")).replace("%", "%%")
        formats[name] = st.column_config.NumberColumn(format=f"%.1f{unit}")
    return columns, formats


def _table(runs: pd.DataFrame, best: dict[str, list[float]]) -> pd.DataFrame:
    def when(ts: float) -> datetime | None:
        return None if pd.isna(ts) else datetime.fromtimestamp(ts)

    return pd.DataFrame({
        "status": runs["status"],
        "name": runs["name"],
        "kind": runs["kind"],  # search or retrain (whose space column is its recipe)
        "space": runs["space"], "algorithm": runs["algorithm"], "dataset": runs["dataset"],
        "epochs": [f"{d} / {e}" for d, e in zip(runs["epochs_done"], runs["epochs"],
                                                strict=True)],
        **best,
        "started": [when(t) for t in runs["started_at"].fillna(runs["created_at"])],
        "duration": [format_duration(d) for d in runs["duration_s"]],
        "live": [f"/live?run={r}" for r in runs["id"]],
        "id": runs["id"],
    })


def _act(action: str, run_id: str) -> None:
    try:
        getattr(common.manager_of(run_id), action)(run_id)
        st.session_state["runs_message"] = f"{action}: {run_id}"
    except (ValueError, RuntimeError, StoreError) as e:
        st.session_state["runs_error"] = str(e)


def _rename(run_id: str) -> None:
    name = st.session_state[f"runs_new_name_{run_id}"].strip()
    try:
        common.store().rename_run(run_id, name)
    except StoreError as e:
        st.session_state["runs_error"] = str(e)


def _delete(run_id: str) -> None:
    st.session_state.pop("runs_confirm", None)
    try:
        common.manager().delete(run_id)
        st.session_state["runs_message"] = f"Deleted {run_id}."
    except (RunNotFound, StoreError) as e:
        st.session_state["runs_error"] = str(e)


def _import() -> None:
    """The uploader's callback: runs once per chosen file, not on every rerun."""
    upload = st.session_state.get("runs_import")
    if upload is None:  # the file was removed from the uploader
        return
    try:
        run_id = import_bundle(common.store(), upload.getvalue())
    except StoreError as e:
        st.session_state["runs_error"] = f"{upload.name} was not imported: {e}"
        return
    run = common.store().get_run(run_id)
    st.session_state["runs_imported"] = (f"Imported **{run['name'] or run_id}** "
                                         f"({run['status']}) as run `{run_id}`.")
    st.session_state["runs_selected"] = run_id


def import_panel() -> None:
    st.file_uploader("Import a run bundle (.zip)", type="zip", key="runs_import",
                     on_change=_import,
                     help="A bundle from Export (here or on another machine) or from "
                          "`.venv/bin/python -m darts_engine export RUN_ID --out RUN_ID.zip`. "
                          "It is checked in full before anything is written. Bundles carry no "
                          "checkpoint: an imported run can be watched and compared, not resumed.")


def actions(run: dict) -> None:
    run_id, state = run["id"], run["status"]
    mgr = common.manager()
    live = mgr.is_live(run_id)
    c = st.columns(4)
    if c[0].button("Open live", icon=":material/monitoring:", key="runs_open", width="stretch"):
        st.switch_page("pages/live.py", query_params={"run": run_id})
    if live:
        c[1].button("Stop", icon=":material/stop:", key="runs_stop", width="stretch",
                    on_click=_act, args=("stop", run_id))
    elif RunState(state).resumable:
        c[1].button("Resume", icon=":material/play_arrow:", key="runs_resume", width="stretch",
                    on_click=_act, args=("resume", run_id),
                    help="Continue from the last checkpoint.")
    elif RunState(state).active:
        c[1].caption("Run by another process (the CLI?): control it there.")
    c[2].button("Delete…", icon=":material/delete:", key="runs_delete", width="stretch",
                on_click=lambda: st.session_state.update(runs_confirm=run_id))
    if st.session_state.get("runs_confirm") == run_id:
        with st.container(border=True):
            st.warning(f"Delete **{run['name'] or run_id}** with all its metrics, α history and "
                       "checkpoints? This cannot be undone." + (" It will be stopped first."
                                                                  if live else ""))
            y, n = st.columns(2)
            y.button("Yes, delete", type="primary", key="runs_delete_yes", on_click=_delete,
                     args=(run_id,), width="stretch")
            n.button("Cancel", key="runs_delete_no", width="stretch",
                     on_click=lambda: st.session_state.pop("runs_confirm", None))

    left, right = st.columns(2)
    with left.form("runs_rename_form", border=False):
        st.text_input("New name", value=run["name"], key=f"runs_new_name_{run_id}",
                      max_chars=200)
        st.form_submit_button("Rename", on_click=_rename, args=(run_id,))
    with right:
        fmt = st.segmented_control("Export format", EXPORT_FORMATS, default="csv",
                                   key="runs_export_fmt") or "csv"
        e1, e2 = st.columns(2)
        e1.download_button(f"Export ({fmt} bundle)",
                           data=lambda: export_bundle(common.store(), run_id, fmt),
                           file_name=f"{run_id}-{fmt}.zip", mime="application/zip",
                           icon=":material/download:", key="runs_export", on_click="ignore")
        e2.download_button("Genotype (.txt)", data=(run["genotype"] or "") + "\n",
                           file_name=f"{run_id}-genotype.txt", mime="text/plain",
                           key="runs_genotype", on_click="ignore",
                           disabled=not run["genotype"])


def table_panel() -> None:
    """The table of every run; refreshes itself while a run is active."""
    current = common.list_runs()
    best, formats = _best_columns(current)
    st.dataframe(_table(current, best), hide_index=True, width="stretch", column_config={
        **formats,
        "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "live": st.column_config.LinkColumn("open", display_text="live ↗"),
    })
    st.caption(f"{len(current)} runs in `{common.store().home}` — runs started from the CLI "
               "(`.venv/bin/python -m darts_engine search ...`) appear here too.")


common.require_app()
st.header("Runs")
if error := st.session_state.pop("runs_error", None):
    st.error(error, icon=":material/error:")
if imported := st.session_state.pop("runs_imported", None):
    st.success(imported, icon=":material/upload:")
runs = common.list_runs()
if runs.empty:
    common.no_runs_yet()
    import_panel()
    st.stop()
if message := st.session_state.pop("runs_message", None):
    st.toast(message)

active = runs["status"].map(is_active).any()
st.fragment(table_panel, run_every=common.COMPARE_REFRESH_S if active else None)()

labels = {r["id"]: common.run_label(r) for r in runs.to_dict("records")}
ids = runs["id"].tolist()

st.subheader("One run")
run_id = st.selectbox("Run", ids, format_func=labels.get, key="runs_selected")
try:
    actions(common.store().get_run(run_id))
except RunNotFound:
    common.missing_run(run_id)

st.subheader("Compare runs")
pick = st.multiselect("Runs", ids, format_func=labels.get, max_selections=4,
                      key="runs_compare", placeholder="Pick two to four runs")
if st.button("Compare", icon=":material/compare:", disabled=len(pick) < 2, key="runs_go_compare"):
    st.switch_page("pages/compare.py", query_params={"runs": ",".join(pick)})

st.subheader("Import")
import_panel()
