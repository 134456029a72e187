"""The Live page's collapse signals: the derived cell's ground truth per epoch (NB201-cell runs,
when a truth table is configured) and the collapse indicators with the alerts that fired. Not a
page itself: pages/live.py lists these sections.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from darts_engine.config import ConfigError
from darts_engine.runs.paths import data_root, resolve_inside
from darts_engine.runs.truth_view import is_nb201_space, truth_series
from darts_engine.runs.views import RunView
from darts_engine.truth.base import TruthError
from darts_engine.viz.curves import format_indicator, indicator_panel, indicator_unit
from darts_engine.viz.truth import truth_curves
from pages import common


def truth_section(view: RunView, status: dict[str, Any]) -> None:
    """NB201-cell runs: each epoch's derived cell looked up in the configured truth table
    (NAS-Bench-201 / NATS-Bench, or the labelled proxy), beside the supernet's headline."""
    if not is_nb201_space(view.config.get("space", "")):
        return
    st.subheader("Ground truth of the derived cell")
    table, ok = _truth_field()
    if not ok:
        return
    if table is None:
        st.caption(f"No truth table configured: set `{common.TRUTH_ENV}` to a NATS-Bench "
                   "fast-mode folder, a NAS-Bench-201 .pth or a CSV from `.venv/bin/python "
                   "-m darts_engine truth export`, or enter its path above.")
        return
    if view.epochs.empty:
        st.info("The true accuracy of the derived cell appears when the first epoch ends.")
        return
    s = truth_series(view.epochs, view.config["space"], table)
    h = view.headline
    if h is not None and h["name"] in view.epochs:
        label, values = h["label"], float(h.get("scale", 1.0)) * view.headline_values()
    else:  # runs recorded before metrics were declared: validation accuracy, 0-1
        label, values = "validation accuracy", 100.0 * view.epochs["val_acc"].to_numpy(float)
    st.plotly_chart(truth_curves(s.epochs, values, label, {d: s.test[d] for d in s.datasets},
                                 s.protocol or table.label),
                    key="live_truth", config={"displayModeBar": False})
    st.caption(f"Test accuracy of the cell derived at each epoch's end, looked up by arch string "
               f"in {table.path} ({s.protocol or table.label}); the dashed line is the "
               "supernet's own accuracy on the search's held-out split."
               + (f" Not in the table: {', '.join(s.missing)}." if s.missing else ""))


def _truth_field() -> tuple[Any, bool]:
    """The path field (inside the data root; empty: $DARTBOARD_TRUTH or the proxy): (the table
    it opens or None, False if a bad path or file showed the engine's message under the field)."""
    st.session_state.setdefault("live_truth_path", st.session_state.get("truth_path", ""))
    text = st.text_input("Truth table path", key="live_truth_path",
                         placeholder=f"empty: ${common.TRUTH_ENV}",
                         help=f"A NATS-Bench fast-mode folder, NAS-Bench-201 .pth or exported CSV "
                              f"inside the data root ({data_root()}).").strip()
    try:
        path = str(resolve_inside(data_root(), text, "truth path")) if text else ""
        table = common.truth_table(path)
    except (ConfigError, TruthError) as e:
        st.error(str(e), icon=":material/error:")
        return None, False
    st.session_state["truth_path"] = path  # Compare overlays the same table
    return table, True


def indicators_section(view: RunView, status: dict[str, Any]) -> None:
    st.subheader("Collapse indicators")
    alerts = view.alerts
    for a in alerts.itertuples():
        rule = common.alert_rule(a.rule)
        st.markdown(f":red-badge[:material/warning: epoch {int(a.epoch) + 1} · {rule['name']}] "
                    f"{a.message} — *{rule['source'] or 'unknown rule'}* · "
                    "[see the Guide](/guide#alerts)", help=rule["explanation"] or None)
    keys = common.indicator_keys(view.epochs.columns)
    if not keys:
        st.info("Indicators appear when the first epoch ends.")
        return
    st.session_state["live_indicators"] = _indicator_selection(view.run["id"], keys,
                                                               view.config.get("space", ""))
    shown = st.multiselect(
        "Indicators shown", keys, key="live_indicators", format_func=common.indicator_label,
        help="The headline collapse signals are preselected; every indicator the run records "
             "(per cell type) can be added.")
    if not shown:
        return
    cols = st.columns(5)
    for i, key in enumerate(shown):
        values = view.epochs[f"ind_{key}"].dropna()
        cols[i % 5].metric(common.indicator_label(key),
                           "–" if values.empty else format_indicator(key, values.iloc[-1]),
                           help=common.indicator_help(key))
    st.caption("Each panel: one indicator by epoch, scaled to its own range (written under its "
               "name). Red dashes mark the epochs an alert fired. The ? beside a value explains "
               "what it measures and what collapse looks like. Indicators measured every few "
               "epochs show only those epochs."
               + (" Accuracy differences are in percentage points (pp)."
                  if any(indicator_unit(k)[1] == "pp" for k in shown) else ""))
    alert_epochs = alerts["epoch"].astype(int).tolist() if len(alerts) else []
    st.plotly_chart(indicator_panel(view.epochs, shown,
                                    [common.indicator_label(k) for k in shown],
                                    alert_epochs),
                    key="live_indicator_panel", config={"displayModeBar": False})


def _indicator_selection(run_id: str, keys: list[str], space: str) -> list[str]:
    """The indicators to select: the person's selection (of this run's keys), plus the headline
    indicators that were not offered before (λmax and the discretisation gap are measured every
    few epochs, so they appear later than the rest). A headline indicator that was offered and
    is not selected was removed by the person and stays removed. What was offered is kept per
    run in session state; Streamlit drops the widget's state when another page was open,
    and then the headline indicators are selected afresh."""
    offered: dict[str, list[str]] = st.session_state.setdefault("live_indicators_offered", {})
    if "live_indicators" not in st.session_state:  # first time, or back from another page
        offered.clear()
    before = set(offered.get(run_id, ()))
    chosen = [k for k in st.session_state.get("live_indicators") or [] if k in keys]
    chosen += [k for k in common.headline_indicators(keys, space)
               if k not in before and k not in chosen]
    offered[run_id] = list(keys)
    return chosen
