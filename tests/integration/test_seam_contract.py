"""The seam's contract: a task and a method defined in the tests (helpers.register_toys)
register, run a real search through `search()`, are recorded with their declaration, and the
store gives back their metric columns and artifacts. Nothing in the engine knows their names."""

from __future__ import annotations

import pytest

from darts_engine import search
from darts_engine.runs.store import RunStore
from tests.helpers import register_toys, tiny


@pytest.fixture
def toys():
    unregister = register_toys()
    yield
    unregister()


def test_a_toy_task_and_method_run_and_are_recorded_with_their_declaration(toys, tmp_path):
    cfg = tiny(task="toy-regression", method="toy-method", epochs=2, toy_weight=0.25)
    store = RunStore(tmp_path / "home")
    run_id = store.create_run(cfg.to_dict())
    rec = store.recorder(run_id)
    result = search(cfg, rec)
    rec.close()
    assert result.status == "completed", result.error
    run = store.get_run(run_id)
    assert run["task"] == "toy-regression"
    assert run["config"]["toy_weight"] == 0.25   # the method's own field, stored with the run
    assert [m["name"] for m in run["metrics"] if m["headline"]] == ["neg_mse"]
    assert [(a["name"], a["kind"]) for a in run["artifacts"]] == [
        ("toy_grid", "toy_image_grid"), ("toy_scale", "toy_scalar")]
    assert result.history[-1]["neg_mse"] < 0 and "val_acc" not in result.history[-1]
    epochs = store.epoch_metrics(run_id)  # the toy metric is a column, with the values recorded
    assert epochs["neg_mse"].tolist() == [h["neg_mse"] for h in result.history]
    assert epochs["neg_mse"].notna().all() and epochs["val_acc"].isna().all()
    _, grids = store.extras_history(run_id, "toy_grid")
    assert grids.shape == (2, 2, 3)
