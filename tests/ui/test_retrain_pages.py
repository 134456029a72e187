"""Retrain runs on the pages: "Evaluate this cell" on Live launches one from the scrubbed cell
and links to it; Live shows a retrain's recipe, cell and curves (no α); Compare and Runs take
retrains beside searches."""

from __future__ import annotations

from darts_engine.runs.kinds import RETRAIN, run_kind
from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore
from darts_engine.train.retrain import preset
from tests.helpers import record, tiny


def _retrain_runs(store: RunStore) -> list[dict]:
    return [r for r in (store.get_run(i) for i in store.list_runs()["id"])
            if run_kind(r["config"]) == RETRAIN]


def test_evaluate_this_cell_launches_a_retrain_run_shown_on_live(app, home):
    store = RunStore(home)
    search_id = record(store, tiny(epochs=2), "searched")
    last = store.genotypes(search_id)["genotype"].iloc[-1]
    at = app("pages/live.py", run=search_id)
    assert "nb201" in " ".join(c.value for c in at.caption)  # the recipe of an NB201 cell
    at.button(key="live_evaluate").click().run()
    assert not at.exception, at.exception
    [retrain] = _retrain_runs(store)
    cfg = retrain["config"]
    assert (cfg["recipe"], cfg["genotype"], cfg["source_run"], cfg["source_epoch"]) == (
        "nb201", last, search_id, 1)
    assert cfg["dataset"] == "shapes"  # the search's data
    assert any(f"/live?run={retrain['id']}" in m.value for m in at.markdown)
    live = app("pages/live.py", run=retrain["id"])
    assert "Retraining a cell from scratch" in [h.value for h in live.subheader]
    assert any(last in c.value for c in live.code)
    assert not [h.value for h in live.subheader if h.value.startswith("Operation weights")]


def test_compare_and_runs_take_a_finished_retrain_beside_a_search(app, home):
    store = RunStore(home)
    search_id = record(store, tiny(epochs=1), "searched")
    mgr = RunManager(store, threads_per_run=1)
    try:
        retrain_id = mgr.launch_retrain(
            preset("nb201", epochs=2, init_channels=4, cells_per_stage=1, threads=1),
            store.genotypes(search_id)["genotype"].iloc[-1], source_run=search_id,
            source_epoch=0)
        mgr.wait(retrain_id, timeout=300)
    finally:
        mgr.shutdown(60)
    assert store.get_run(retrain_id)["status"] == "completed"
    live = app("pages/live.py", run=retrain_id)
    assert "Loss and accuracy" in [h.value for h in live.subheader]
    compare = app("pages/compare.py", runs=f"{search_id},{retrain_id}")
    assert any("retrain (nb201)" in m.value for m in compare.markdown)
    runs = app("pages/runs.py")
    table = runs.dataframe[0].value
    assert sorted(table["kind"]) == ["retrain", "search"]


def test_evaluate_these_cells_retrains_each_runs_final_cell_and_a_reference(app, home):
    from darts_engine.runs.kinds import REFERENCE_CELLS

    store = RunStore(home)
    a = record(store, tiny(epochs=1), "a")
    b = record(store, tiny(epochs=1, algorithm="single"), "b")
    at = app("pages/compare.py", runs=f"{a},{b}")
    at.button(key="compare_evaluate").click().run()
    assert not at.exception, at.exception
    retrains = _retrain_runs(store)
    by_source = {r["config"]["source_run"]: r["config"] for r in retrains}
    assert set(by_source) == {a, b, None}
    for rid in (a, b):
        assert by_source[rid]["genotype"] == store.get_run(rid)["genotype"]
        assert (by_source[rid]["recipe"], by_source[rid]["source_epoch"]) == ("nb201", 0)
    assert by_source[None]["genotype"] == REFERENCE_CELLS["nb201"][1]
    assert len({(c["seed"], c["epochs"], c["dataset"]) for c in by_source.values()}) == 1
    [link] = [m.value for m in at.markdown if "/compare?runs=" in m.value]
    assert set(link.split("runs=")[1].rstrip(")").split(",")) == {r["id"] for r in retrains}
