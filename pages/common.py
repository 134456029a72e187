"""What every page shares: the process-wide run manager and store, cached reads of a run, the
selected runs in the URL, and a few small widgets. Not a page itself (app.py lists the pages).

Reads are cached per (run id, store data version): while a run gets no new rows nothing is
reloaded, and a finished run is read once. Worker threads never come here; pages only read
the store and the manager's plain-data status.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from darts_engine.runs import manager as runs
from darts_engine.runs import views
from darts_engine.runs.labels import (  # noqa: F401  (the pages call them as common.*)
    HEADLINE_INDICATORS,
    alert_rule,
    headline_indicators,
    indicator_help,
    indicator_keys,
    indicator_label,
    run_label,
)
from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore, default_home
from darts_engine.runs.views import MAX_LINE_POINTS, RunView, load_view
from darts_engine.truth.base import TruthTable
from darts_engine.truth.reader import ENV as TRUTH_ENV
from darts_engine.truth.reader import configured_truth
from darts_engine.viz.alphas import edge_weight_lines
from darts_engine.viz.curves import downsample

REFRESH_S = 1.0              # live page refresh
COMPARE_REFRESH_S = 2.0
ASSETS = Path(__file__).resolve().parent.parent / "assets"


# --- every page goes through app.py -------------------------------------------------------------
def require_app() -> None:
    """Called first by every page. When the first request after a server start is a page URL
    (a bookmarked /live?run=...), Streamlit runs that pages/ file on its own, in its legacy
    "pages directory" mode: no app.py, so no navigation, layout or logo, and every helper file
    in pages/ listed as a page, for as long as the server lives. Switch the process to app.py's
    st.navigation and rerun: the same URL then opens the same page inside the app."""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# --- the process-wide manager ------------------------------------------------------------------
@st.cache_resource(show_spinner=False, on_release=lambda m: m.shutdown())
def _manager(home: str) -> RunManager:
    # Two searches at a time (each with cores / 2 torch threads); the rest wait as "queued".
    return RunManager(RunStore(home), max_concurrent=2)


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Once per server: the engine's one-time imports, in the background (no st.* there)."""
    t = threading.Thread(target=runs.warm_up, name="dartboard-warm-up", daemon=True)
    t.start()
    return t


def manager() -> RunManager:
    """The one RunManager of this server process, on $DARTBOARD_HOME (default ./runs)."""
    return _manager(str(default_home().expanduser().resolve()))


def store() -> RunStore:
    return manager().store


# --- one run, read from the store (the read model is darts_engine/runs/views.py) ---------------
@st.cache_data(show_spinner=False, max_entries=48)
def _load(home: str, run_id: str, version: tuple[Any, ...], steps: bool) -> RunView:
    # `home` and `version` only key the cache: a new version means new rows or a new status.
    return load_view(store(), run_id, steps=steps)


def load_run(run_id: str, steps: bool = True) -> RunView:
    """The run's data as of now (cached while nothing changed). Raises RunNotFound.
    steps=False skips the per-step metrics (pages that plot per epoch only)."""
    s = store()
    return _load(str(s.home), run_id, s.data_version(run_id), steps)


@st.cache_resource(show_spinner=False, max_entries=16)
def _edge_lines(run_id: str, n: int, last_step: int, cell: str, _view: RunView) -> Any:
    # Keyed by the α snapshots it shows; built once per new snapshot, shared read-only
    # (st.plotly_chart only serialises it). About 100 traces for a DARTS cell.
    view = _view
    keep = downsample(len(view.alpha_index), MAX_LINE_POINTS)
    x = view.alpha_index["step"].to_numpy(np.float64)[keep] / max(1, view.steps_per_epoch)
    return edge_weight_lines(x, view.mix(view.alphas[cell][keep], view.progress_at(keep)), view.ops,
                             view.edges[cell], cols=7 if len(view.edges[cell]) > 6 else 6)


def edge_lines_figure(view: RunView, cell: str) -> Any:
    """Small multiples of one cell's edges over time (cached per α snapshot count)."""
    idx = view.alpha_index
    return _edge_lines(view.run["id"], len(idx), int(idx["step"].iloc[-1]), cell, view)


# --- NAS-Bench-201 ground truth (darts_engine/truth/) -------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def _truth(path: str, env: str, mtime: float) -> TruthTable | None:
    # `env` and `mtime` only key the cache: opened once per file version (a fast-mode folder
    # reads its meta file), reopened when the file is rewritten.
    return configured_truth(path or None)


def truth_table(path: str = "") -> TruthTable | None:
    """The truth table: `path` (the Live page's field, resolved inside the data root), else
    $DARTBOARD_TRUTH, else the labelled proxy when installed, else None. Raises TruthError."""
    env = os.environ.get(TRUTH_ENV, "")
    try:
        mtime = os.stat(path or env).st_mtime if path or env else 0.0
    except OSError:  # missing: configured_truth says so
        mtime = 0.0
    return _truth(path, env, mtime)


# Managers besides the server's one (a sweep's Ray executor), so that their runs count as live.
_EXTRA_MANAGERS: list[RunManager] = []


def add_manager(mgr: RunManager) -> None:
    if mgr not in _EXTRA_MANAGERS:
        _EXTRA_MANAGERS.append(mgr)


def _managers() -> list[RunManager]:
    return [manager(), *_EXTRA_MANAGERS]


def manager_of(run_id: str) -> RunManager:
    """The manager running `run_id` (a sweep's Ray one, say); the server's one otherwise."""
    return next((m for m in _EXTRA_MANAGERS if m.is_live(run_id)), manager())


def live_ids() -> set[str]:
    return set().union(*(m.live_ids() for m in _managers()))


def list_runs() -> pd.DataFrame:
    return views.list_runs(store(), live_ids())


def unknown_artifacts(view: RunView, known: Iterable[str]) -> None:
    """One line per declared artifact kind the page has no renderer for (`known`: the kinds it
    draws), so nothing the run records is silently missing."""
    known = set(known)
    for kind, artifacts in view.artifacts.items():
        if kind not in known:
            names = ", ".join(str(a.get("label") or a.get("name")) for a in artifacts)
            st.caption(f"Not drawn here: {names} (artifact kind `{kind}` has no renderer on "
                       "this page).")


# --- status of a run, live or not ---------------------------------------------------------------
def run_status(view: RunView) -> dict[str, Any]:
    """The manager's plain-data status for runs this server runs; for others (CLI runs,
    finished runs after a restart) the same keys estimated from the store."""
    for mgr in _managers():
        status = mgr.status(view.run["id"])
        if status is not None and mgr.is_live(view.run["id"]):
            return status
    return views.run_status(view)


# --- runs in the URL -------------------------------------------------------------------------
def url_runs(key: str) -> list[str]:
    """Run ids from the query parameter `key` (`?run=ID` or `?runs=ID1,ID2`)."""
    value = st.query_params.get(key, "")
    return [r for r in str(value).split(",") if r]


def set_url_runs(key: str, run_ids: list[str]) -> None:
    if run_ids:
        st.query_params[key] = ",".join(run_ids)
    elif key in st.query_params:
        del st.query_params[key]


# --- small shared widgets ------------------------------------------------------------------------
def no_runs_yet() -> None:
    st.info("No runs yet. Start one from **Launch** — the collapse demo takes a few minutes "
            "on a laptop CPU.")
    st.page_link("pages/launch.py", label="Go to Launch", icon=":material/rocket_launch:")


def missing_run(run_id: str) -> None:
    st.warning(f"Run `{run_id}` is not in the store at {store().home} (it may have been "
               "deleted).")
