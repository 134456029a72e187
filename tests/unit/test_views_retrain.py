"""The read model of a retrain run (no ops, edges or α), on a store filled by hand."""

import numpy as np
import pytest

from darts_engine.events import EpochRecord, RunFinished, RunStarted
from darts_engine.runs.kinds import RETRAIN, retrain_run_config
from darts_engine.runs.store import RunStore
from darts_engine.runs.views import list_runs, load_view, run_status
from darts_engine.train.retrain import METRICS, preset

CONV = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "runs")
    yield s
    s.close()


def _retrain(store, test_accs=(0.3, 0.6)):
    config = retrain_run_config(preset("nb201", epochs=3), CONV, "src", 4)
    run_id = store.create_run(config, name="r")
    rec = store.recorder(run_id)
    rec(RunStarted(config, "cpu", 5, 7, (), {}, task="retrain", metrics=METRICS))
    for e, acc in enumerate(test_accs):
        rec(EpochRecord(e, 7 * (e + 1), 2.0 - e, 1.5 - e, 0.1, 1.0, 1.0 + e, {}, CONV,
                        metrics={"test_acc": acc, "train_acc": acc / 2}))
    rec.close()
    return run_id


def test_a_retrain_view_has_no_alpha_and_its_test_accuracy_is_the_curve(store):
    view = load_view(store, _retrain(store))
    assert view.kind == RETRAIN and (view.ops, view.edges, view.alphas) == ((), {}, {})
    assert view.cells == () and len(view.alpha_index) == 0
    assert view.headline["name"] == "test_acc"
    curves = view.curve_epochs()
    assert curves["val_acc"].tolist() == [0.3, 0.6]
    assert np.isnan(view.epochs["val_acc"]).all()  # the stored frame is left as it is
    status = run_status(view)
    assert (status["epoch"], status["epochs"], status["step"]) == (2, 3, 14)


def test_a_search_views_curves_are_its_own(store):
    run_id = store.create_run({"space": "nb201", "epochs": 1})
    rec = store.recorder(run_id)
    rec(RunStarted({"space": "nb201", "epochs": 1}, "cpu", 1, 1, ("none",), {"cell": ("a",)}))
    rec(EpochRecord(0, 1, 1.0, 1.0, 0.1, 1.0, 1.0, {"cell": np.zeros((1, 1), np.float32)}, "",
                    metrics={"val_acc": 0.25}))
    rec(RunFinished("completed", 1))
    rec.close()
    view = load_view(store, run_id)
    assert view.kind == "search" and view.curve_epochs() is view.epochs


def test_the_listing_gives_each_run_its_kind_and_a_retrain_its_recipe(store):
    retrain_id = _retrain(store)
    search_id = store.create_run({"space": "darts", "epochs": 1})
    runs = list_runs(store, set()).set_index("id")
    assert runs.loc[retrain_id, "kind"] == RETRAIN and runs.loc[retrain_id, "space"] == "nb201"
    assert runs.loc[search_id, "kind"] == "search" and runs.loc[search_id, "space"] == "darts"
    assert runs.loc[retrain_id, "headline_best"] == pytest.approx(0.6)
