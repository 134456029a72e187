"""The collapse demo on Compare answers its own question: for a finished bi-level /
single-level pair, one button retrains both final cells and the reference cell (same recipe
and seed), and once they finish the page states each retrain's stored test accuracy."""

from __future__ import annotations

from darts_engine.runs.kinds import REFERENCE_CELLS, RETRAIN, run_kind
from darts_engine.runs.store import RunStore
from darts_engine.train.retrain import RECIPES
from tests.helpers import manager, record, tiny


def test_the_demo_button_retrains_three_cells_and_the_text_gives_their_accuracies(
        app, home, monkeypatch):
    # the nb201 recipe at a test's size (the page launches the recipe's preset)
    for key, value in dict(epochs=1, init_channels=4, cells_per_stage=1, threads=1).items():
        monkeypatch.setitem(RECIPES["nb201"].values, key, value)
    store = RunStore(home)
    bi = record(store, tiny(epochs=1), "demo · bi-level")
    single = record(store, tiny(epochs=1, algorithm="single"), "demo · single-level")
    at = app("pages/compare.py", runs=f"{bi},{single}")
    assert "Does the collapse hurt?" in [h.value for h in at.subheader]
    at.button(key="compare_demo_retrain").click().run()
    assert not at.exception, at.exception
    retrains = [store.get_run(i) for i in store.list_runs()["id"]]
    retrains = [r for r in retrains if run_kind(r["config"]) == RETRAIN]
    by_source = {r["config"]["source_run"]: r for r in retrains}
    assert set(by_source) == {bi, single, None}
    assert by_source[None]["config"]["genotype"] == REFERENCE_CELLS["nb201"][1]
    for rid in (bi, single):
        assert by_source[rid]["config"]["genotype"] == store.get_run(rid)["genotype"]
    recipes = {(r["config"]["recipe"], r["config"]["seed"], r["config"]["epochs"],
                r["config"]["dataset"]) for r in retrains}
    assert recipes == {("nb201", 0, 1, "shapes")}
    mgr = manager()
    for r in retrains:
        mgr.wait(r["id"], timeout=300)
        assert store.get_run(r["id"])["status"] == "completed"
    at.run()
    assert not at.exception, at.exception
    [text] = [m.value for m in at.markdown if "Retrained from scratch" in m.value]
    labels = {bi: "bi-level cell", single: "single-level cell",
              None: f"reference ({REFERENCE_CELLS['nb201'][0]})"}
    for source, r in by_source.items():
        acc = float(store.epoch_metrics(r["id"])["test_acc"].iloc[-1])
        assert f"{labels[source]} **{100 * acc:.1f}%**" in text
    assert not [b for b in at.button if b.key == "compare_demo_retrain"]  # launched once
    [link] = [m.value for m in at.markdown if "/compare?runs=" in m.value]
    assert set(link.split("runs=")[1].rstrip(")").split(",")) == {r["id"] for r in retrains}
