"""What every page shares: the process-wide run manager and store, cached reads of a run, the
selected runs in the URL, and a few small widgets. Not a page itself (app.py lists the pages).

Reads are cached per (run id, store data version): while a run gets no new rows nothing is
reloaded, and a finished run is read once. Worker threads never come here; pages only read
the store and the manager's plain-data status.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from darts_engine.monitor.alerts import rule_docs
from darts_engine.monitor.indicators import indicator_docs, split_key
from darts_engine.registries import SPACES
from darts_engine.runs import manager as runs
from darts_engine.runs import views
from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore, default_home
from darts_engine.runs.views import MAX_LINE_POINTS, RunView, load_view
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
    return edge_weight_lines(x, view.mix(view.alphas[cell][keep]), view.ops,
                             view.edges[cell], cols=7 if len(view.edges[cell]) > 6 else 6)


def edge_lines_figure(view: RunView, cell: str) -> Any:
    """Small multiples of one cell's edges over time (cached per α snapshot count)."""
    idx = view.alpha_index
    return _edge_lines(view.run["id"], len(idx), int(idx["step"].iloc[-1]), cell, view)


def list_runs() -> pd.DataFrame:
    return views.list_runs(store(), manager().live_ids())


# --- collapse indicators -----------------------------------------------------------------------
def indicator_keys(columns: Iterable[str]) -> list[str]:
    """The indicator keys ('skip_mass.cell', 'disc_gap') among epoch_metrics columns
    ('ind_skip_mass.cell', ...), in registry order."""
    order = {d["name"]: i for i, d in enumerate(indicator_docs())}
    keys = [c[len("ind_"):] for c in columns if c.startswith("ind_")]
    keys = [k for k in keys if k.partition(".")[0] in order]
    return sorted(keys, key=lambda k: (order[k.partition(".")[0]], k))


# Shown by default on the live page (the rest one click away): the collapse signature the
# literature describes (RobustDARTS, DARTS+, SDARTS; PF/skip/none mass apart, decidedness,
# λmax, discretisation gap) and whether α still moves at all (single-level on memorised data
# stops moving, not collapsing).
HEADLINE_INDICATORS = ("skip_count", "pf_count", "pf_mass", "skip_mass", "none_mass", "entropy",
                       "margin", "hessian_eig", "disc_gap", "train_val_gap", "alpha_grad_norm")


def headline_indicators(keys: Iterable[str], space: str) -> list[str]:
    """The headline indicators among keys, for the space's headline cell only (DARTS: normal;
    NB201's one cell) plus those about the whole network."""
    keys = list(keys)
    first = SPACES.get(space).headline if space in SPACES else None
    return [k for k in keys if split_key(k)[0].name in HEADLINE_INDICATORS
            and split_key(k)[1] in (None, first)]


def unknown_artifacts(view: RunView, known: Iterable[str]) -> None:
    """One line per declared artifact kind the page has no renderer for (`known`: the kinds it
    draws), so nothing the run records is silently missing."""
    known = set(known)
    for kind, artifacts in view.artifacts.items():
        if kind not in known:
            names = ", ".join(str(a.get("label") or a.get("name")) for a in artifacts)
            st.caption(f"Not drawn here: {names} (artifact kind `{kind}` has no renderer on "
                       "this page).")


def indicator_label(key: str) -> str:
    """'skip_mass.normal' -> 'skip_connect mass (normal cell)'; NB201's one cell: no suffix."""
    indicator, cell = split_key(key)
    return indicator.title if cell in (None, "cell") else f"{indicator.title} ({cell} cell)"


def indicator_help(key: str) -> str:
    """The student-level explanation: what it measures, what collapse looks like, source, and
    a link to the Guide's indicator section."""
    doc = split_key(key)[0].doc()
    return (f"{doc['what']}\n\n**Collapse:** {doc['collapse']}\n\n*Source:* {doc['source']}. "
            "More in the [Guide](/guide#indicators).")


def alert_rule(name: str) -> dict[str, str]:
    """rule_docs() entry of a fired alert's rule (name only if the rule is unknown)."""
    return next((r for r in rule_docs() if r["name"] == name),
                {"name": name, "title": name, "source": "", "explanation": ""})


# --- status of a run, live or not ---------------------------------------------------------------
def run_status(view: RunView) -> dict[str, Any]:
    """The manager's plain-data status for runs this server runs; for others (CLI runs,
    finished runs after a restart) the same keys estimated from the store."""
    status = manager().status(view.run["id"])
    if status is not None and manager().is_live(view.run["id"]):
        return status
    return views.run_status(view)


def run_label(row: Any) -> str:
    """`name — space/dataset (id)` for pickers; row: a list_runs row or run dict."""
    cfg = row.get("config") or {}
    algorithm = row.get("algorithm") or cfg.get("algorithm", "")
    space = row.get("space") or cfg.get("space", "")
    dataset = row.get("dataset") or cfg.get("dataset", "")
    name = row.get("name") or algorithm
    return f"{name} — {space}/{dataset} ({row['id']})"


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
