"""What Live and Compare open on, and what they keep, as a first-time user meets them: the
indicators measured every few epochs join the selection when they appear; Live opens a pair's
bi-level run; Compare opened without a selection shows the newest pair."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from darts_engine.runs.store import RunStore
from tests.helpers import record, tiny

LATE = ("hessian_eig", "disc_gap", "disc_val_acc")  # measured every 2 epochs here: epoch 2 only


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A pair as RunManager.launch_pair records it (bi-level first, then single-level), λmax
    and the discretisation gap measured at the second epoch only."""
    home = tmp_path_factory.mktemp("pair") / "runs"
    s = RunStore(home)
    cfg = dict(epochs=2, hessian_every=2, gap_every=2)
    ids = {"bi": record(s, tiny(**cfg), "pair · bi-level"),
           "single": record(s, tiny(**cfg, algorithm="single"), "pair · single-level")}
    s.close()
    return home, ids


@pytest.fixture
def runs(pair, home):
    shutil.copytree(pair[0], home)
    return pair[1]


def _rewrite_last_epoch(home, run_id: str, drop: tuple[str, ...] = (), restore: str = "") -> str:
    """Drop indicator keys from the run's last epoch row (or put back `restore`, the JSON an
    earlier call returned) and bump updated_at, so the page's cached read sees a new version.
    Returns the row's JSON as it was."""
    con = sqlite3.connect(RunStore(home).path)
    with con:
        (epoch, text), = con.execute(
            "SELECT epoch, indicators_json FROM epoch_metrics WHERE run_id = ? "
            "ORDER BY epoch DESC LIMIT 1", (run_id,))
        new = restore or json.dumps({k: v for k, v in json.loads(text).items()
                                     if k not in drop})
        con.execute("UPDATE epoch_metrics SET indicators_json = ? WHERE run_id = ? AND "
                    "epoch = ?", (new, run_id, epoch))
        con.execute("UPDATE runs SET updated_at = updated_at + 1 WHERE id = ?", (run_id,))
    con.close()
    return text


def test_live_adds_indicators_that_appear_later_unless_removed(app, home, runs):
    rid = runs["bi"]
    full = _rewrite_last_epoch(home, rid, drop=LATE)   # as the page saw it before epoch 2
    at = app("pages/live.py", run=rid)
    picker = at.multiselect(key="live_indicators")
    assert not set(LATE) & set(picker.options) and "entropy.cell" in picker.value
    picker.set_value([k for k in picker.value if k != "margin.cell"]).run()  # removed by hand
    _rewrite_last_epoch(home, rid, restore=full)        # epoch 2 measured λmax and the gap
    at.run()
    shown = at.multiselect(key="live_indicators").value
    assert {"hessian_eig", "disc_gap"} <= set(shown)     # the headline ones join by themselves
    assert "disc_val_acc" not in shown                   # not a headline one: offered only
    assert "margin.cell" not in shown and "entropy.cell" in shown
    at.run()                                             # and they stay as they are
    assert at.multiselect(key="live_indicators").value == shown


def test_live_shows_accuracy_gaps_in_percentage_points(app, home, runs):
    rid = runs["bi"]
    at = app("pages/live.py", run=rid)
    gap = RunStore(home).epoch_metrics(rid)["ind_train_val_gap"].iloc[-1]
    metric = next(m for m in at.metric if m.label == "Supernet train − validation accuracy")
    assert metric.value == f"{100 * gap:.3g} pp"


def test_live_opens_on_the_bilevel_run_of_the_newest_pair(app, runs):
    at = app("pages/live.py")
    assert at.selectbox(key="live_run").value == runs["bi"]


def test_compare_without_a_selection_shows_the_newest_pair(app, runs):
    at = app("pages/compare.py")
    assert at.multiselect(key="compare_runs").value == [runs["bi"], runs["single"]]
    table = at.dataframe[-1].value
    assert "skip_connect in the cell" in table.index
    at.multiselect(key="compare_runs").set_value([]).run()   # cleared on purpose: stays empty
    assert at.multiselect(key="compare_runs").value == []
