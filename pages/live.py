"""Live: one run as it happens. Status and controls, per-edge operation weights (heatmap with a
scrubber, the derived cell as a DAG, small multiples over time; PC-DARTS' edge weights beside
them), LFR-DARTS' cell per stage, training curves, the derived cell's NAS-Bench-201 ground
truth per epoch (when a truth table is configured), collapse indicators with the alerts that
fired, and the genotype. "Evaluate this cell" retrains the cell at the scrubbed snapshot from
scratch as a run of its own. A retrain run shows its recipe, the cell it trains and its curves
(no α). The panel refreshes itself every second while the run is active (st.fragment), without
rerunning the page.

Each section is a function of (view, status) listed in SECTIONS, so a panel is one function plus
one list entry; the collapse signals (truth, indicators) are in pages/live_signals.py, the
plug-in artifacts' drawings (LFR stages, SR pictures) in pages/live_artifacts.py.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from darts_engine.config import ConfigError
from darts_engine.registries import SPACES
from darts_engine.runs.kinds import RETRAIN, recipe_for
from darts_engine.runs.pairs import launched_pairs
from darts_engine.runs.states import RunState, is_active
from darts_engine.runs.store import RunNotFound
from darts_engine.runs.views import RunView
from darts_engine.train.retrain import RECIPES, preset
from darts_engine.viz.alphas import alpha_heatmap
from darts_engine.viz.cells import GRAPHVIZ_FONT_CSS, cell_dots
from darts_engine.viz.curves import training_curves
from darts_engine.viz.palette import EDGE_WEIGHT_LABEL
from darts_engine.viz.tables import format_duration
from pages import common
from pages.live_artifacts import images_section, stages_section, unknown_artifacts_section
from pages.live_signals import indicators_section, truth_section


def _control(action: str, run_id: str) -> None:
    try:
        getattr(common.manager_of(run_id), action)(run_id)
    except (ValueError, RuntimeError) as e:
        st.session_state["live_control_error"] = str(e)


# --- sections ------------------------------------------------------------------------------------
def status_section(view: RunView, status: dict[str, Any]) -> None:
    run_id, state = view.run["id"], status["state"]
    epochs, spe = max(1, status["epochs"]), status["steps_per_epoch"]
    total = epochs * spe
    c = st.columns([1.1, 1, 1, 1, 1, 2.2])
    c[0].metric("Status", state)
    c[1].metric("Epoch", f"{status['epoch']} / {status['epochs']}")
    sps = status["steps_per_s"]
    c[2].metric("Throughput", f"{sps:.1f} steps/s"
                if is_active(state) and np.isfinite(sps) and sps > 0 else "–")
    eta = status["eta_s"]
    c[3].metric("ETA", format_duration(eta) if is_active(state) else "–")
    c[4].metric(*_best_headline(view))
    with c[5]:
        _controls(run_id, state)
    fraction = min(1.0, status["step"] / total) if total and spe else status["epoch"] / epochs
    st.progress(fraction, text=f"epoch {status['epoch']} / {status['epochs']} · step "
                               f"{status['step']} / {total if spe else '?'}")
    if state == RunState.QUEUED:
        st.info(f"Queued: {common.manager().max_concurrent} runs go at a time; this one starts "
                "when a slot frees up.", icon=":material/hourglass_top:")
    if error := status.get("error") or view.run.get("error"):
        st.error(f"This run {state}: {error}"
                 if state in (RunState.FAILED, RunState.INTERRUPTED)
                 else error, icon=":material/error:")
    if message := st.session_state.pop("live_control_error", None):
        st.warning(message)


def _best_headline(view: RunView) -> tuple[str, str]:
    """(label, best value so far) of the run's declared headline metric; runs without a
    declaration show the stored best validation accuracy."""
    h = view.headline
    if h is None:
        best = view.run.get("best_val_acc")
        return "Best val acc", "–" if best is None else f"{100 * best:.1f}%"
    values = view.epochs[h["name"]].dropna() if h["name"] in view.epochs else []
    if not len(values):
        return f"Best {h['label']}", "–"
    best = values.max() if h.get("higher_is_better", True) else values.min()
    return f"Best {h['label']}", f"{float(h.get('scale', 1.0)) * best:.1f}{h.get('unit', '')}"


def _controls(run_id: str, state: str) -> None:
    mgr = common.manager()
    b = st.columns(3)
    if mgr.is_live(run_id):
        if state == RunState.PAUSED:
            b[0].button("Resume", key="live_resume", on_click=_control, args=("resume", run_id),
                        icon=":material/play_arrow:", width="stretch")
        else:
            b[0].button("Pause", key="live_pause", on_click=_control, args=("pause", run_id),
                        icon=":material/pause:", width="stretch", disabled=state != RunState.RUNNING)
        b[1].button("Stop", key="live_stop", on_click=_control, args=("stop", run_id),
                    icon=":material/stop:", width="stretch", disabled=state == RunState.STOPPING)
    elif RunState(state).resumable:
        b[0].button("Resume", key="live_resume", on_click=_control, args=("resume", run_id),
                    icon=":material/play_arrow:", width="stretch",
                    help="Continue from the last checkpoint (end of the last full epoch).")
    elif is_active(state):
        b[0].caption("Started by another process (e.g. the CLI): control it there.")


def weights_section(view: RunView, status: dict[str, Any]) -> None:
    st.subheader("Operation weights per edge")
    steps = view.alpha_index["step"].to_numpy()
    if steps.size == 0:
        st.info("Waiting for the first architecture weights…")
        return
    run_id = view.run["id"]
    key, follow_key = f"live_scrub_{run_id}", f"live_follow_{run_id}"
    # The slider spans the whole planned run, so its range (and with it the widget) stays the
    # same while snapshots arrive; past the latest snapshot it shows the latest.
    total = max(int(steps[-1]), int(view.config.get("epochs", 0)) * view.steps_per_epoch)
    # While following, the code moves the slider and the person cannot; to scrub, they switch
    # following off. (A slider moved both by code and by hand loses to refresh races.)
    top = st.columns([4, 1], vertical_alignment="bottom")
    follow = top[1].checkbox("Follow latest", value=True, key=follow_key,
                             help="Untick to scrub back in time.")
    if follow or key not in st.session_state:
        st.session_state[key] = int(steps[-1])
    if total > 0:
        top[0].slider("Step", 0, total, key=key, disabled=follow,
                      help="Scrub back through the recorded α (every alpha_every steps and at "
                           "each epoch's end); the nearest snapshot at or before the step is "
                           "shown.")
    i = _scrubbed(view)
    row = view.alpha_index.iloc[i]
    where = "end of epoch" if row["source"] == "epoch" else "during epoch"
    beta = view.edge_weights_at(i)  # PC-DARTS only: cell -> (edges,)
    st.caption(f"Snapshot {i + 1} of {steps.size}: step {int(row['step'])}, {where} "
               f"{int(row['epoch']) + 1}. Each row is one edge's mixing weights over the ops "
               "(softmax(α), 0–1); the cell next to it is what would be derived from them "
               + (_EDGE_WEIGHT_NOTE if beta else "(edge width = the kept op's weight).")
               + (" PC-DARTS edge weights appear when the first epoch ends."
                  if view.edge_weights and not beta else ""))
    raw = view.snapshot(i)
    dots = _cell_dots(view, i, beta)
    for cell in view.cells:
        left, right = st.columns([1, 1])
        left.plotly_chart(alpha_heatmap(view.mix(raw[cell], view.progress_at(i)), view.ops, view.edges[cell],
                                        title=_cell_title(cell),
                                        edge_weights=beta.get(cell),
                                        mask=view.op_mask(cell)),
                          key=f"live_heatmap_{cell}", config={"displayModeBar": False})
        if cell in dots:
            right.graphviz_chart(dots[cell], width="stretch")


def _scrubbed(view: RunView) -> int:
    """The α snapshot the step slider points at: the nearest at or before its step."""
    steps = view.alpha_index["step"].to_numpy()
    step = st.session_state.get(f"live_scrub_{view.run['id']}", int(steps[-1]))
    return max(0, int(np.searchsorted(steps, step, side="right")) - 1)


def evaluate_section(view: RunView, status: dict[str, Any]) -> None:
    """"Evaluate this cell": retrain the cell derived at the scrubbed snapshot from scratch, with
    the recipe of its kind, as a run of its own; a link opens it."""
    if len(view.alpha_index) == 0:
        return
    i = _scrubbed(view)
    try:
        genotype = str(view.genotype_at(i))
    except ValueError:
        return
    try:
        recipe = recipe_for(genotype)
    except ConfigError as e:  # e.g. a space with ops the discrete networks do not build
        st.caption(f"No retrain recipe for this cell: {e}")
        return
    epoch = int(view.alpha_index["epoch"].iloc[i])
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.button("Evaluate this cell", key="live_evaluate", icon=":material/model_training:",
                on_click=_evaluate, args=(view.run["id"], genotype, epoch, recipe),
                help="Train this cell's discrete network from scratch (a retrain run) and "
                     "measure its accuracy on a test split the search never saw.")
    right.caption(f"Retrains the cell above (epoch {epoch + 1}) with the **{recipe}** recipe on "
                  f"{view.config.get('dataset', '')}: {RECIPES[recipe].text}")
    if launched := st.session_state.get("live_evaluated"):
        st.markdown(f":material/open_in_new: [Open the retrain run {launched}](/live?run="
                    f"{launched})")


def _evaluate(run_id: str, genotype: str, epoch: int, recipe: str) -> None:
    config = common.store().get_run(run_id)["config"]
    data = {k: config[k] for k in ("dataset", "data_root", "download", "seed", "device")
            if k in config}
    try:
        st.session_state["live_evaluated"] = common.manager().launch_retrain(
            preset(recipe, **data), genotype, source_run=run_id, source_epoch=epoch)
    except (ConfigError, RuntimeError) as e:
        st.session_state["live_control_error"] = str(e)


def retrain_section(view: RunView, status: dict[str, Any]) -> None:
    """A retrain run: where its cell came from, its recipe, and the cell it trains."""
    cfg = view.config
    st.subheader("Retraining a cell from scratch")
    source, epoch = cfg.get("source_run"), cfg.get("source_epoch")
    origin = ("a pasted cell" if not source else f"the cell of search run [{source}]"
              f"(/live?run={source})" + ("" if epoch is None else f" at epoch {epoch + 1}"))
    st.markdown(f"Trains {origin} · recipe **{cfg.get('recipe')}** · {cfg.get('dataset')} · "
                f"{cfg.get('epochs')} epochs")
    if cfg.get("recipe") in RECIPES:
        st.caption(RECIPES[cfg["recipe"]].text + " Test accuracy is measured on a split the "
                   "search never read.")
    st.code(cfg.get("genotype", ""), language=None, wrap_lines=True)


def _cell_title(cell: str) -> str:
    return "cell" if cell == "cell" else f"{cell} cell"


_EDGE_WEIGHT_NOTE = (
    "(with PC-DARTS' edge weights: each edge's op weight times its edge weight). The narrow "
    f"**{EDGE_WEIGHT_LABEL}** column is that edge weight, softmax of β over the node's "
    "incoming edges, as of the last epoch that ended (PC-DARTS, Xu et al. 2020, §3.3); in the "
    "cell, edge width = the edge weight.")


def _cell_dots(view: RunView, i: int, edge_weights: dict[str, np.ndarray]) -> dict[str, str]:
    try:
        genotype = view.genotype_at(i)
    except ValueError as e:
        st.caption(f"No cell to draw: {e}")
        return {}
    space = view.config.get("space")
    return cell_dots(genotype, view.snapshot(i), view.ops, normalise=view.mix,
                     edge_weights=edge_weights or None,
                     topology=SPACES.get(space).topology if space in SPACES else None)


def edges_section(view: RunView, status: dict[str, Any]) -> None:
    if len(view.alpha_index) < 2:
        return
    st.subheader("Each edge's op weights over time")
    cell = view.cells[0]
    if len(view.cells) > 1:
        cell = st.segmented_control("Cell", view.cells, default=view.cells[0],
                                    key="live_edges_cell") or view.cells[0]
    st.plotly_chart(common.edge_lines_figure(view, cell), key="live_edge_lines",
                    config={"displayModeBar": False})


def curves_section(view: RunView, status: dict[str, Any]) -> None:
    h = view.headline
    accuracy = h is None or h["name"] == "val_acc" or h.get("unit") == "%"
    st.subheader("Loss and " + ("accuracy" if accuracy else h["label"]))
    if view.steps.empty and view.epochs.empty:
        st.info("Waiting for the first steps…")
        return
    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="live_smoothing",
                          help="Moving average of the per-step training curves; the raw curve "
                               "stays faint underneath.")
    st.plotly_chart(training_curves(view.steps, view.curve_epochs(), view.steps_per_epoch,
                                    smoothing, metrics=view.metrics), key="live_curves")
    if view.kind == RETRAIN:
        st.caption("Held-out: the test split, after each epoch; train: the epoch's mean.")


def genotype_section(view: RunView, status: dict[str, Any]) -> None:
    st.subheader("Genotype")
    text = view.run.get("genotype") or ""
    if not text:
        st.caption("Derived after the first epoch.")
        return
    st.caption("Latest epoch, in the reference text format (copy button on the right).")
    st.code(text, language=None, wrap_lines=True)


def log_section(view: RunView, status: dict[str, Any]) -> None:
    with st.expander("Log and config"):
        st.code("\n".join(f"[{r.level}] {_last_line(r.message)}" for r in view.logs.itertuples())
                or "(empty)", language=None)
        st.json(view.config, expanded=False)


def _last_line(message: str) -> str:
    """A failure's log record holds its traceback; the page shows only its last line."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


Section = Callable[[RunView, dict[str, Any]], None]
SECTIONS: list[Section] = [
    status_section, weights_section, evaluate_section, stages_section, images_section,
    edges_section, curves_section, truth_section, indicators_section, genotype_section,
    unknown_artifacts_section, log_section]
# A retrain run trains a discrete network: no α, cells or indicators to draw.
RETRAIN_SECTIONS: list[Section] = [status_section, retrain_section, curves_section,
                                   unknown_artifacts_section, log_section]


# --- the page ------------------------------------------------------------------------------------
def _pick_run() -> str | None:
    runs = common.list_runs()
    if runs.empty:
        common.no_runs_yet()
        return None
    ids = runs["id"].tolist()
    wanted = common.url_runs("run")
    default = wanted[0] if wanted and wanted[0] in ids else _default_run(runs)
    labels = {r["id"]: common.run_label(r) for r in runs.to_dict("records")}
    st.session_state["live_run"] = default
    run_id = st.selectbox("Run", ids, key="live_run", format_func=labels.get,
                          label_visibility="collapsed", on_change=_select_run)
    return run_id


def _default_run(runs: pd.DataFrame) -> str:
    """The run Live opens on without ?run=: the newest active run (the newest run when none is
    active); for a pair launched together, its bi-level member, as Compare lists it first (the
    pair is launched bi-level first, so its single-level run is the newer one)."""
    ids = runs["id"].tolist()
    active = runs.loc[runs["status"].map(is_active), "id"].tolist()
    default = (active or ids)[0]
    declared = common.store().declarations()
    rows = [{"id": r, "config": declared[r]["config"]} for r in ids if r in declared]
    for bi, single in launched_pairs(rows):
        if default == single and (bi in active or not active):
            return bi
    return default


def _select_run() -> None:
    common.set_url_runs("run", [st.session_state["live_run"]])


def _panel(run_id: str, was_active: bool) -> None:
    try:
        view = common.load_run(run_id)
    except RunNotFound:
        common.missing_run(run_id)
        return
    status = common.run_status(view)
    if is_active(status["state"]) != was_active:
        st.rerun()  # switch the auto-refresh on or off
    for section in RETRAIN_SECTIONS if view.kind == RETRAIN else SECTIONS:
        section(view, status)


common.require_app()
st.html(GRAPHVIZ_FONT_CSS)  # the cell drawings' fonts as their DOT sets them
st.header("Live")
if (run_id := _pick_run()) is not None:
    common.set_url_runs("run", [run_id])
    try:
        active = is_active(common.run_status(common.load_run(run_id))["state"])
    except RunNotFound:
        common.missing_run(run_id)
        st.stop()
    st.fragment(_panel, run_every=common.REFRESH_S if active else None)(run_id, active)
