"""NAS-Bench-201 ground truth on the pages: with $DARTBOARD_TRUTH naming a small truth CSV that
holds the cells a recorded NB201 search derived, Live plots their true test accuracies per epoch
with the protocol, and Compare overlays each run's true CIFAR-10 accuracy; a file in the wrong
format entered in Live's field shows the engine's message, not a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from darts_engine.runs.store import RunStore
from tests.helpers import array, plotly_figures, record, tiny, truth_csv

PROTOCOL = "NAS-Bench-201, 200 epochs, mean of 3 seeds"


def _truth_for(store: RunStore, *run_ids: str) -> dict[str, dict[str, float]]:
    """Chosen, distinct accuracies for every arch the runs derived, in order of appearance."""
    archs = dict.fromkeys(a for r in run_ids for a in store.genotypes(r)["genotype"])
    return {a: {"cifar10": 60.0 + k, "cifar100": 30.0 + k, "ImageNet16-120": 10.0 + k}
            for k, a in enumerate(archs)}


def _truth_figure(at) -> dict:
    """The one figure with the truth's protocol note."""
    [fig] = [f for f in plotly_figures(at) if any(
        "true test accuracy" in n.get("text", "") for n in f["layout"].get("annotations", []))]
    return fig


@pytest.fixture
def data(tmp_path, monkeypatch):
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("DARTBOARD_DATA", str(d))
    return d


def test_live_plots_the_true_accuracy_of_each_epochs_cell(app, home, data, tmp_path,
                                                         monkeypatch):
    store = RunStore(home)
    run_id = record(store, tiny(epochs=2), "truth")
    truth = _truth_for(store, run_id)
    monkeypatch.setenv("DARTBOARD_TRUTH", str(truth_csv(tmp_path / "nb201.csv", truth)))
    at = app("pages/live.py", run=run_id)
    fig = _truth_figure(at)
    derived = store.genotypes(run_id)["genotype"].tolist()
    traces = {t["name"]: array(t["y"]) for t in fig["data"]}
    for dataset, label in (("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100"),
                           ("ImageNet16-120", "ImageNet16-120")):
        np.testing.assert_array_equal(traces[f"true test · {label}"],
                                      [truth[a][dataset] for a in derived])
    np.testing.assert_allclose(traces["supernet validation accuracy"],
                               100 * store.epoch_metrics(run_id)["val_acc"].to_numpy())
    assert PROTOCOL in fig["layout"]["annotations"][0]["text"]
    assert "Ground truth of the derived cell" in [h.value for h in at.subheader]


def test_a_wrong_format_file_in_the_field_shows_the_message(app, home, data, monkeypatch):
    monkeypatch.delenv("DARTBOARD_TRUTH", raising=False)
    store = RunStore(home)
    run_id = record(store, tiny(epochs=1), "truth")
    (data / "bad.csv").write_text("arch,cifar10_test\nx,1\n")
    at = app("pages/live.py", run=run_id)
    at.text_input(key="live_truth_path").input("bad.csv").run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "bad.csv" in error and "first line must be" in error
    assert not [f for f in plotly_figures(at) if any(
        t.get("name", "").startswith("true test") for t in f["data"])]
    at.text_input(key="live_truth_path").input("../outside.csv").run()
    assert not at.exception, at.exception
    assert "must stay inside" in at.error[0].value


def test_compare_overlays_each_runs_true_cifar10_accuracy(app, home, data, tmp_path,
                                                          monkeypatch):
    store = RunStore(home)
    a, b = record(store, tiny(epochs=2), "a"), record(store, tiny(epochs=2, seed=1), "b")
    truth = _truth_for(store, a, b)
    monkeypatch.setenv("DARTBOARD_TRUTH", str(truth_csv(tmp_path / "nb201.csv", truth)))
    at = app("pages/compare.py", runs=f"{a},{b}")
    fig = _truth_figure(at)
    traces = {t["name"]: array(t["y"]) for t in fig["data"]}
    for name, rid in (("a", a), ("b", b)):
        np.testing.assert_array_equal(
            traces[name], [truth[g]["cifar10"] for g in store.genotypes(rid)["genotype"]])
    assert PROTOCOL in fig["layout"]["annotations"][0]["text"]


def test_without_a_table_one_line_says_how_to_configure_one(app, home, data, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.delenv("DARTBOARD_TRUTH", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec",  # as if analog-nasbench were not installed
                        lambda name, *a: None if name == "analognasbench" else find_spec(name, *a))
    store = RunStore(home)
    run_id = record(store, tiny(epochs=1), "truth")
    at = app("pages/live.py", run=run_id)
    assert any("No truth table configured: set `DARTBOARD_TRUTH`" in c.value for c in at.caption)
    assert not at.error


def test_with_only_the_proxy_installed_live_plots_it_under_its_own_label(app, home, data,
                                                                        monkeypatch):
    import importlib.util

    if importlib.util.find_spec("analognasbench") is None:  # read as data, never imported
        pytest.skip("analog-nasbench is not installed")
    from darts_engine.truth.proxy import PROXY, AnalogProxy

    monkeypatch.delenv("DARTBOARD_TRUTH", raising=False)
    store = RunStore(home)
    run_id = record(store, tiny(epochs=1), "truth")
    at = app("pages/live.py", run=run_id)
    fig = _truth_figure(at)
    [arch] = store.genotypes(run_id)["genotype"]
    traces = {t["name"]: array(t["y"]) for t in fig["data"]}
    assert set(traces) == {"supernet validation accuracy", "true test · CIFAR-10"}
    assert traces["true test · CIFAR-10"][0] == AnalogProxy().query(arch).test["cifar10"]
    assert PROXY in fig["layout"]["annotations"][0]["text"]
    assert "NAS-Bench-201" not in fig["layout"]["annotations"][0]["text"]
