"""Compare: 2–4 runs side by side. Overlaid curves and collapse indicators (first the one the runs'
preset is about: presets.story_indicator); the true CIFAR-10 accuracy of each NB201 run's
derived cell per epoch (when a truth table is configured); heatmaps and derived cells of every run at one shared
epoch; a genotype diff at that epoch; a summary table with config differences marked;
"Evaluate these cells" retrains each search's final cell (and optionally a reference cell) with
one recipe and seed, and opens the retrains here, their test accuracy on one plot; for a finished
bi-level / single-level pair (the collapse demo), "Does the collapse hurt?" retrains both cells
and the reference cell and states their measured (and, with a table, true) accuracies.
Refreshes itself while any of the runs is active. `?runs=ID1,ID2` selects the runs.
"""

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from darts_engine.config import ConfigError
from darts_engine.registries import SPACES
from darts_engine.runs.demo import DemoCell, demo_cells, demo_pair, demo_text, launch_demo_retrains
from darts_engine.runs.kinds import REFERENCE_CELLS, RETRAIN, recipe_for
from darts_engine.runs.pairs import launched_pairs
from darts_engine.runs.states import is_active
from darts_engine.runs.store import RunNotFound
from darts_engine.runs.truth_view import is_nb201_space, truth_series
from darts_engine.runs.views import RunView
from darts_engine.train.presets import story_indicator
from darts_engine.train.retrain import RECIPES, preset
from darts_engine.truth.base import TruthError
from darts_engine.viz.alphas import alpha_heatmap
from darts_engine.viz.cells import GRAPHVIZ_FONT_CSS, cell_dots
from darts_engine.viz.curves import compare_curves, indicator_overlay
from darts_engine.viz.images import strip_panels
from darts_engine.viz.tables import genotype_diff, summary_table
from darts_engine.viz.truth import truth_overlay
from pages import common
from pages.seedbands import seed_bands_section

MAX_RUNS = 4
# artifact kinds this page draws: β per run, an SR run's image strip at the shared epoch
KNOWN_KINDS = ("edge_weights", "edge_logits", "image_strip", "image_strip_scores")


def _labels(views: dict[str, RunView]) -> dict[str, str]:
    """Short unique labels: the run name (or algorithm), with the id where names repeat."""
    names = {rid: v.run["name"] or v.config.get("algorithm", rid) for rid, v in views.items()}
    counts = pd.Series(list(names.values())).value_counts()
    return {rid: n if counts[n] == 1 else f"{n} ({rid[-4:]})" for rid, n in names.items()}


def _snapshot_at(view: RunView, epoch: int) -> tuple[int, int] | None:
    """(epoch shown, snapshot row) at the end of `epoch`, or of the run's last epoch before."""
    rows = view.epoch_rows()
    if rows.size == 0:
        return None
    k = min(epoch, rows.size - 1)
    return k, int(rows[k])


def curves_section(views: dict[str, RunView], labels: dict[str, str]) -> None:
    st.subheader("Curves")
    # The runs' own headline when they share one (PSNR for SR runs), else accuracy.
    heads = {(v.headline or {}).get("name") for v in views.values()}
    metrics = next(iter(views.values())).metrics if len(heads) == 1 else ()
    st.plotly_chart(compare_curves({labels[r]: v.curve_epochs() for r, v in views.items()},
                                   metrics=metrics), key="compare_curves")


def truth_section(views: dict[str, RunView], labels: dict[str, str]) -> None:
    """The true CIFAR-10 test accuracy of each NB201-cell search's derived cell per epoch, from
    the table the Live page (or $DARTBOARD_TRUTH) configured."""
    nb201 = {r: v for r, v in views.items()
             if v.kind != RETRAIN and is_nb201_space(v.config.get("space", ""))}
    if not nb201:
        return
    try:
        table = common.truth_table(st.session_state.get("truth_path", ""))
    except TruthError as e:
        st.warning(f"Ground truth not shown: {e}")
        return
    if table is None:
        return
    series = {r: truth_series(v.epochs, v.config["space"], table) for r, v in nb201.items()}
    protocol = "; ".join(dict.fromkeys(s.protocol for s in series.values() if s.protocol))
    st.subheader("Ground truth of the derived cells")
    st.plotly_chart(truth_overlay({labels[r]: (s.epochs, s.test["cifar10"])
                                   for r, s in series.items()}, protocol or table.label),
                    key="compare_truth", config={"displayModeBar": False})
    st.caption(f"CIFAR-10 test accuracy of the cell each run derived at each epoch's end, looked "
               f"up in {table.path}; gaps: cells the table has no row for.")


def indicator_section(views: dict[str, RunView], labels: dict[str, str]) -> None:
    st.subheader("Collapse indicators")
    keys = common.indicator_keys({c for v in views.values() for c in v.epochs.columns})
    if not keys:
        st.caption("Indicators appear when the first epoch ends.")
        return
    # First shown: the indicator the runs' preset is about (the collapse demo's is parameter-free
    # mass), in its first cell type; again whenever another set of runs is picked.
    story = story_indicator(v.config for v in views.values())
    default = next((k for k in keys if k.partition(".")[0] == story), keys[0])
    picked_for = ",".join(views)
    if (st.session_state.get("compare_indicator") not in keys
            or st.session_state.get("compare_indicator_runs") != picked_for):
        st.session_state["compare_indicator"] = default
        st.session_state["compare_indicator_runs"] = picked_for
    key = st.selectbox("Indicator", keys, key="compare_indicator",
                       format_func=common.indicator_label,
                       help="Every indicator the selected runs recorded.")
    st.caption(common.indicator_help(key))
    st.plotly_chart(indicator_overlay({labels[r]: v.epochs for r, v in views.items()},
                                      key, common.indicator_label(key)),
                    key="compare_indicator_chart")


def cells_section(views: dict[str, RunView], labels: dict[str, str]) -> int | None:
    """Heatmaps and cells at one epoch for every run; returns the epoch shown."""
    st.subheader("Operation weights and derived cells at one epoch")
    last = max((int(v.run["epochs_done"]) for v in views.values()), default=0)
    if last == 0:
        st.info("Waiting for the first epoch to finish…")
        return None
    # The range is the longest planned run, fixed while the runs progress (a slider whose
    # range changes is a new widget); epochs not reached yet show a run's last epoch.
    planned = max([last, *(int(v.config.get("epochs", 0)) for v in views.values())])
    top = st.columns([4, 1], vertical_alignment="bottom")
    follow = top[1].checkbox("Follow latest", value=True, key="compare_follow",
                             help="Untick to pick an epoch.")
    if follow or "compare_epoch" not in st.session_state:
        st.session_state["compare_epoch"] = last
    if planned > 1:
        epoch = top[0].slider("Epoch (shared by all runs)", 1, planned, key="compare_epoch",
                              disabled=follow)
    else:
        epoch = 1
    epoch = min(epoch, last)
    cols = st.columns(len(views))
    for col, (rid, view) in zip(cols, views.items(), strict=True):
        with col:
            if view.kind == RETRAIN:
                st.markdown(f"**{labels[rid]}** · retrain ({view.config.get('recipe')})")
                st.caption("A retrain trains one fixed cell (no α):")
                st.code(view.config.get("genotype", ""), language=None, wrap_lines=True)
                continue
            st.markdown(f"**{labels[rid]}** · {view.config.get('algorithm')}")
            common.unknown_artifacts(view, KNOWN_KINDS)
            at = _snapshot_at(view, epoch - 1)
            if at is None:
                st.caption("No epoch finished yet.")
                continue
            shown, row = at
            if shown != epoch - 1:
                st.caption(f"(its last epoch: {shown + 1})")
            raw = view.snapshot(row)
            beta = view.edge_weights_at(row)  # PC-DARTS only: cell -> (edges,)
            for cell in view.cells:
                st.plotly_chart(
                    alpha_heatmap(view.mix(raw[cell], view.progress_at(row)), view.ops, view.edges[cell],
                                  title=cell if cell == "cell" else f"{cell} cell",
                                  edge_weights=beta.get(cell),
                                  mask=view.op_mask(cell)),
                    key=f"compare_heatmap_{rid}_{cell}", config={"displayModeBar": False})
            try:
                genotype = view.genotype_at(row)
            except ValueError as e:
                st.caption(f"No cell to draw: {e}")
                continue
            space = view.config.get("space")
            for dot in cell_dots(genotype, raw, view.ops, normalise=view.mix,
                                 edge_weights=beta or None,
                                 topology=SPACES.get(space).topology if space in SPACES
                                 else None).values():
                st.graphviz_chart(dot, width="stretch")
            for strip in view.image_strips:
                images, scores = strip.at(shown)
                panels = strip_panels(images, scores, strip.titles, zoom=2)
                st.image([p for p, _ in panels], caption=[c for _, c in panels])
    return epoch


def diff_section(views: dict[str, RunView], labels: dict[str, str], epoch: int) -> None:
    st.subheader(f"Genotype diff at epoch {epoch}")
    genotypes: dict[str, str] = {}
    for rid, view in views.items():
        at = _snapshot_at(view, epoch - 1)
        if at is not None:
            genotypes[labels[rid]] = str(view.genotype_at(at[1]))
    ops = sorted({op for v in views.values() for op in v.ops})
    diff = genotype_diff(genotypes, ops)
    if diff.empty:
        st.caption("Nothing to compare yet.")
        return
    st.caption(f"{int(diff['differs'].sum())} of {len(diff)} nodes differ (highlighted).")
    st.dataframe(diff.style.apply(_highlight_rows, mask=diff["differs"].to_numpy(), axis=None),
                 hide_index=True, width="stretch")


def _highlight_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    colour = np.where(mask, "background-color: #fef3c7", "")
    return pd.DataFrame(np.repeat(colour[:, None], frame.shape[1], axis=1),
                        index=frame.index, columns=frame.columns)


def summary_section(views: dict[str, RunView], labels: dict[str, str]) -> None:
    st.subheader("Summary")
    runs: dict[str, dict[str, Any]] = {}
    # one cell type for every column (a retrain has none of its own)
    first = next((v.cells[0] for v in views.values() if v.cells), "cell")
    for rid, view in views.items():
        wall = view.epochs["wall_time"].to_numpy(np.float64)
        runs[labels[rid]] = {
            "config": view.config, "epochs_done": int(view.run["epochs_done"]),
            "headline": view.headline or {"label": "headline metric"},
            "values": view.headline_values(),
            "wall_time": float(wall[-1]) if wall.size else None,
            "genotype": view.run.get("genotype") or "",
            "alphas": {c: a[-1] for c, a in view.alphas.items() if len(a)},
            "ops": view.ops, "param_free": view.param_free,
            "cell": view.cells[0] if view.cells else first,
            "normalise": view.mix}
    table = summary_table(runs)
    mask = np.array([str(i).startswith("config · ") for i in table.index])
    st.dataframe(table.style.apply(_highlight_rows, mask=mask, axis=None), width="stretch")
    if mask.any():
        st.caption("Highlighted: config fields that differ between the runs.")


def evaluate_section(views: dict[str, RunView], labels: dict[str, str]) -> None:
    """Retrain the searches' final cells side by side: one recipe per cell kind, seed 0, each
    on its search's data; optionally the recipe's reference cell too."""
    cells = {rid: v.run["genotype"] for rid, v in views.items()
             if v.kind != RETRAIN and v.run.get("genotype") and _retrainable(v.run["genotype"])}
    if not cells:
        return
    st.subheader("Evaluate these cells")
    recipes = sorted({recipe_for(g) for g in cells.values()})
    references = [REFERENCE_CELLS[r] for r in recipes if r in REFERENCE_CELLS]
    fits = len(cells) + len(references) <= MAX_RUNS  # all of them fit one Compare
    with_ref = fits and st.checkbox(
        "Also a reference cell: " + ", ".join(label for label, _ in references),
        key="compare_evaluate_reference", value=fits, disabled=not fits)
    st.button("Evaluate these cells", key="compare_evaluate", icon=":material/model_training:",
              on_click=_evaluate, args=(views, cells, with_ref),
              help="Train each run's final cell from scratch (a retrain run each, same recipe "
                   "and seed) and compare their test accuracy here.")
    st.caption(" ".join(f"**{r}**: {RECIPES[r].text}" for r in recipes))
    if launched := st.session_state.get("compare_evaluated"):
        st.markdown(f":material/open_in_new: [Compare the retrains](/compare?runs="
                    f"{','.join(launched)})")


def _retrainable(genotype: str) -> bool:
    """A recipe builds this cell's network (not, e.g., a space with ops of its own)."""
    try:
        recipe_for(genotype)
    except ConfigError:
        return False
    return True


def _evaluate(views: dict[str, RunView], cells: dict[str, str], with_ref: bool) -> None:
    mgr, launched = common.manager(), []
    try:
        for rid, genotype in cells.items():
            cfg = preset(recipe_for(genotype), dataset=views[rid].config.get("dataset", "digits"))
            launched.append(mgr.launch_retrain(cfg, genotype, source_run=rid,
                                               source_epoch=int(views[rid].run["epochs_done"])
                                               - 1))
        if with_ref:
            first = next(iter(cells))
            for recipe in sorted({recipe_for(g) for g in cells.values()}):
                label, text = REFERENCE_CELLS[recipe]
                cfg = preset(recipe, dataset=views[first].config.get("dataset", "digits"))
                launched.append(mgr.launch_retrain(cfg, text, name=f"retrain · {label}"))
    except (ConfigError, RuntimeError) as e:
        st.session_state["compare_evaluate_error"] = str(e)
    st.session_state["compare_evaluated"] = launched[:MAX_RUNS]


def demo_section(views: dict[str, RunView]) -> None:
    """A finished bi-level / single-level pair (the collapse demo): retrain both final cells and
    the reference cell with one recipe and seed, and say how each retrained. Refreshes itself
    while those retrains run."""
    pair = demo_pair([v.run for v in views.values()])
    if pair is None:
        return
    st.subheader("Does the collapse hurt?")
    active = any(c.status and is_active(c.status) for c in _demo_cells(pair))
    st.fragment(_demo_panel, run_every=common.COMPARE_REFRESH_S if active else None)(pair, active)


def _demo_cells(pair: tuple[str, str]) -> list[DemoCell]:
    try:
        table = common.truth_table(st.session_state.get("truth_path", ""))
    except TruthError:  # the truth section above says why
        table = None
    return demo_cells(common.store(), *pair, table)


def _demo_panel(pair: tuple[str, str], was_active: bool) -> None:
    cells = _demo_cells(pair)
    if any(c.status and is_active(c.status) for c in cells) != was_active:
        st.rerun()
    if not any(c.retrain_id for c in cells):
        st.button("Retrain the pair's cells", key="compare_demo_retrain",
                  icon=":material/model_training:", on_click=_demo_retrain, args=pair,
                  help="Train the bi-level cell, the single-level cell and a reference cell "
                       "from scratch (three retrain runs, same recipe and seed).")
    if text := demo_text(cells):
        st.markdown(text)


def _demo_retrain(bi_id: str, single_id: str) -> None:
    try:  # "Evaluate these cells" below links to them
        st.session_state["compare_evaluated"] = launch_demo_retrains(common.manager(), bi_id,
                                                                     single_id)
    except (ConfigError, RuntimeError) as e:
        st.session_state["compare_evaluate_error"] = str(e)


# --- the page ------------------------------------------------------------------------------------
def _panel(run_ids: list[str], was_active: bool) -> None:
    views: dict[str, RunView] = {}
    for rid in run_ids:
        try:
            views[rid] = common.load_run(rid, steps=False)
        except RunNotFound:
            common.missing_run(rid)
    if len(views) < 2:
        return
    active = any(is_active(common.run_status(v)["state"]) for v in views.values())
    if active != was_active:
        st.rerun()
    labels = _labels(views)
    curves_section(views, labels)
    truth_section(views, labels)
    indicator_section(views, labels)
    seed_bands_section(views, labels)
    epoch = cells_section(views, labels)
    if epoch is not None:
        diff_section(views, labels, epoch)
    summary_section(views, labels)
    demo_section(views)
    evaluate_section(views, labels)
    if message := st.session_state.pop("compare_evaluate_error", None):
        st.warning(message)


def _newest_pair(ids: list[str]) -> list[str]:
    """[bi-level id, single-level id] of the newest pair launched together (ids: newest
    first), or [] when there is none."""
    declared = common.store().declarations()
    pairs = launched_pairs([{"id": r, "config": declared[r]["config"]}
                            for r in ids if r in declared])
    return list(pairs[0]) if pairs else []


def _select() -> None:
    common.set_url_runs("runs", st.session_state["compare_runs"])


common.require_app()
st.html(GRAPHVIZ_FONT_CSS)  # the cell drawings' fonts as their DOT sets them
st.header("Compare")
runs = common.list_runs()
if runs.empty:
    common.no_runs_yet()
    st.stop()
ids = runs["id"].tolist()
labels = {r["id"]: common.run_label(r) for r in runs.to_dict("records")}
wanted = [r for r in common.url_runs("runs") if r in ids][:MAX_RUNS]
if wanted:
    st.session_state["compare_runs"] = wanted
elif "compare_runs" not in st.session_state:  # opened without a selection: the newest pair
    st.session_state["compare_runs"] = _newest_pair(ids)
chosen = st.multiselect("Runs to compare (2–4)", ids, key="compare_runs",
                        format_func=labels.get, max_selections=MAX_RUNS, on_change=_select,
                        placeholder="Pick two to four runs")
common.set_url_runs("runs", chosen)
if len(chosen) < 2:
    st.info("Pick at least two runs. A pair launched from **Launch** opens here by itself.")
    st.stop()
active = any(is_active(s) for s in runs.set_index("id").loc[chosen, "status"])
st.fragment(_panel, run_every=common.COMPARE_REFRESH_S if active else None)(chosen, active)
