"""The read model (runs/views.py) on a store filled by hand through the Recorder: no search."""

import numpy as np
import pytest

from darts_engine.events import (
    EpochRecord,
    RunFinished,
    RunStarted,
    StepRecord,
    artifact,
    metric,
)
from darts_engine.registries import SPACES
from darts_engine.runs.store import RunStore
from darts_engine.runs.views import list_runs, load_view, run_status

SPACE = SPACES.get("nb201")
EDGES, OPS = len(SPACE.edge_labels), len(SPACE.ops)
SPE = 2  # steps per epoch


def _alpha(value: float) -> dict[str, np.ndarray]:
    return {"cell": np.full((EDGES, OPS), value, np.float32)}


def _fill(store: RunStore, epoch_times=(2.0, 4.0), epochs=4, finish=None, steps_alpha=True,
          artifacts=(), extras=lambda e: {}, metrics=()):
    """epochs_done = len(epoch_times); step k carries α = k, epoch e's record α = 100 + e;
    the run declares `artifacts` and epoch e records `extras(e)`."""
    run_id = store.create_run({"space": "nb201", "epochs": epochs}, name="by hand")
    rec = store.recorder(run_id)
    rec(RunStarted(config={"space": "nb201", "epochs": epochs}, device="cpu", n_params=1,
                   steps_per_epoch=SPE, ops=SPACE.ops, edges={"cell": SPACE.edge_labels},
                   task="classification", metrics=tuple(metrics),
                   artifacts=tuple(artifacts)))
    step = 0
    for e, t in enumerate(epoch_times):
        for _ in range(SPE):
            step += 1
            rec(StepRecord(epoch=e, step=step, train_loss=1.0 / step,
                           metrics={"train_acc": 0.1 * step},
                           alphas=_alpha(step) if steps_alpha else None))
        rec(EpochRecord(epoch=e, step=step, train_loss=0.5, val_loss=0.6, lr=0.1,
                        epoch_time=t, wall_time=t, alphas=_alpha(100 + e), genotype="",
                        metrics={"train_acc": 0.5, "val_acc": 0.4 + 0.1 * e},
                        extras=extras(e)))
    if finish:
        rec(RunFinished(status=finish, epochs_done=len(epoch_times)))
    rec.close()
    return run_id


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "runs")
    yield s
    s.close()


def test_the_alpha_timeline_merges_steps_and_epochs_and_the_epoch_record_wins(store):
    view = load_view(store, _fill(store))
    idx = view.alpha_index
    assert idx["step"].tolist() == [1, 2, 3, 4]
    assert idx["source"].tolist() == ["step", "epoch", "step", "epoch"]
    # at step 2 both a step and an epoch snapshot exist: the epoch's α (100) is kept
    assert view.alphas["cell"][:, 0, 0].tolist() == [1.0, 100.0, 3.0, 101.0]
    assert view.epoch_rows().tolist() == [1, 3]
    assert view.snapshot(2)["cell"].shape == (EDGES, OPS)


def test_ops_edges_and_the_mixing_come_from_the_space(store):
    view = load_view(store, _fill(store))
    assert view.ops == SPACE.ops and view.edges == {"cell": SPACE.edge_labels}
    assert view.param_free == tuple(o for o in SPACE.ops if o in SPACE.param_free)
    raw = np.array([[0.0, np.log(3.0)]])
    assert np.allclose(view.mix(raw), [[0.25, 0.75]])  # softmax, computed by hand
    assert view.op_mask("cell") is None  # NB201: every edge has every op


def test_steps_are_strided_to_at_most_the_asked_points(store):
    run_id = _fill(store, epoch_times=(1.0,) * 10, epochs=10)
    assert len(load_view(store, run_id).steps) == 20
    strided = load_view(store, run_id, max_step_points=5).steps
    assert 1 < len(strided) <= 5
    assert load_view(store, run_id, steps=False).steps.empty


def test_status_and_eta_of_an_active_run_from_the_store(store):
    status = run_status(load_view(store, _fill(store)))
    assert status["state"] == "running" and status["epoch"] == 2 and status["epochs"] == 4
    assert status["step"] == 4 and status["steps_per_epoch"] == SPE
    assert status["eta_s"] == pytest.approx((4 - 2) * 3.0)   # epochs left × mean(2 s, 4 s)
    assert status["steps_per_s"] == pytest.approx(SPE / 3.0)


def test_a_final_run_has_no_eta(store):
    status = run_status(load_view(store, _fill(store, finish="stopped")))
    assert status["state"] == "stopped" and status["eta_s"] == 0.0


def test_artifacts_are_grouped_by_kind_and_the_headline_found(store, monkeypatch):
    run_id = _fill(store)
    declared = {
        "metrics": [{"name": "val_acc", "label": "validation accuracy", "headline": True},
                    {"name": "train_acc", "label": "training accuracy", "headline": False}],
        "artifacts": [{"name": "edge_weight_cell", "kind": "edge_weights", "cell": "cell"},
                      {"name": "beta_cell", "kind": "edge_logits", "cell": "cell"},
                      {"name": "toy_a", "kind": "toy"}, {"name": "toy_b", "kind": "toy"}]}
    get_run = store.get_run
    monkeypatch.setattr(store, "get_run", lambda rid: {**get_run(rid), **declared})
    view = load_view(store, run_id)
    assert sorted(view.artifacts) == ["edge_logits", "edge_weights", "toy"]
    assert [a["name"] for a in view.artifacts["toy"]] == ["toy_a", "toy_b"]
    assert view.headline["name"] == "val_acc"


def test_artifacts_are_read_through_the_declaration_by_kind_never_by_name(store):
    """Declared names without the old prefixes are found by kind; a prefixed extra the run
    did not declare is ignored; a cell the run lacks is skipped."""
    declared = (artifact("w_of_edges", "edge_weights", "w", cell="cell"),
                artifact("raw", "edge_logits", "raw", cell="cell"),
                artifact("elsewhere", "edge_logits", "x", cell="reduce"),
                artifact("where_now", "stage", "stage"),
                artifact("frozen", "stage_cells", "frozen", cell="cell"))
    run_id = _fill(store, artifacts=declared, extras=lambda e: {
        "w_of_edges": np.full(EDGES, 0.1 * (e + 1), np.float32),
        "raw": np.full(EDGES, -e, np.float32), "elsewhere": np.zeros(EDGES, np.float32),
        "where_now": np.array([e], np.float32),
        "frozen": np.full((2, EDGES, OPS), e, np.float32),
        "edge_weight_cell": np.full(EDGES, 9.0, np.float32)})   # undeclared: ignored
    view = load_view(store, run_id)
    epochs, weights = view.edge_weights["cell"]
    assert epochs.tolist() == [0, 1] and weights[:, 0] == pytest.approx([0.1, 0.2])
    assert sorted(view.betas) == ["cell"] and view.betas["cell"][1][:, 0].tolist() == [0, -1]
    assert view.stage.tolist() == [1.0]                     # the latest epoch's
    assert sorted(view.stage_cells) == ["cell"] and view.stage_cells["cell"].shape == (2, EDGES,
                                                                                       OPS)
    assert (view.stage_cells["cell"] == 1).all()
    # snapshot 1 is epoch 0's end: its edge weights; snapshot 2 is mid epoch 1: still epoch 0's
    assert view.edge_weights_at(1)["cell"][0] == pytest.approx(0.1)
    assert view.edge_weights_at(2)["cell"][0] == pytest.approx(0.1)
    assert view.edge_weights_at(3)["cell"][0] == pytest.approx(0.2)


def test_a_run_without_declared_artifacts_has_none(store):
    view = load_view(store, _fill(store, extras=lambda e: {
        "edge_weight_cell": np.ones(EDGES, np.float32)}))
    assert view.edge_weights == {} and view.betas == {} and view.stage is None
    assert view.stage_cells == {} and view.edge_weights_at(1) == {}


def test_the_listing_and_the_view_carry_each_runs_declared_headline(store):
    """val_acc (higher is better) comes from the store's best_val_acc; val_loss declared lower
    is better is the minimum over the epochs (0.6 in both epochs here: by hand)."""
    acc = _fill(store, metrics=(metric("val_acc", "validation accuracy", unit="%",
                                       headline=True, scale=100.0),))
    loss = _fill(store, metrics=(metric("val_loss", "validation loss", higher_is_better=False,
                                        headline=True),))
    bare = _fill(store)
    runs = list_runs(store, live_ids={acc, loss, bare}).set_index("id")
    assert runs.loc[acc, "headline"]["label"] == "validation accuracy"
    assert runs.loc[acc, "headline_best"] == pytest.approx(0.5)    # max(0.4, 0.5)
    assert runs.loc[loss, "headline"]["name"] == "val_loss"
    assert runs.loc[loss, "headline_best"] == pytest.approx(0.6)
    assert runs.loc[bare, "headline"] is None and np.isnan(runs.loc[bare, "headline_best"])
    assert load_view(store, acc).headline_values() == pytest.approx([0.4, 0.5])
    assert load_view(store, bare).headline_values().size == 0


def test_list_runs_marks_a_run_whose_writer_is_gone(store):
    run_id = _fill(store)  # "running", written by this process, which runs nothing now
    assert list_runs(store, live_ids={run_id}).set_index("id").loc[run_id, "status"] == "running"
    assert list_runs(store, live_ids=set()).set_index("id").loc[run_id, "status"] == "interrupted"
