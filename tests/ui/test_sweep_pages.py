"""Sweeps on the pages (issue 16): the Launch page's Sweep mode checks a grid × seeds, shows its
run count and estimated time, refuses bad input next to the field it names with nothing
queued, and starts it; the Sweep page shows its progress and the collapse phase diagram, whose
cells are checked against the store's epoch rows; Compare's seed bands against the runs'
curves. Expected values are computed here from the store, not through the pages' code."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore
from darts_engine.runs.sweep import SweepSpec, launch_sweep
from darts_engine.viz.tables import format_duration
from tests.helpers import array, heatmaps, manager, plotly_figures, record, tiny

# A tiny search on digits: 128 images, C=4, one NB201 cell, one epoch of about a second.
BASE_NUMBERS = {"epochs": 1, "data_limit": 128, "init_channels": 4, "cells": 1,
                "batch_size": 32, "threads": 1}
BASE_CHOICES = {"space": "nb201", "dataset": "digits", "algorithm": "bilevel-1st"}
ARCH_LRS = ("3e-4", "3e-3")


def _sweep_mode(at: AppTest, fields: list[str], values: dict[str, str], seeds: str) -> AppTest:
    """The Launch page in Sweep mode with these sweep inputs."""
    at.session_state["launch_mode"] = "Sweep"
    at.run()
    at.multiselect(key="launch_sweep_fields").set_value(fields).run()
    for name, value in values.items():
        at.text_input(key=f"launch_sweep_values_{name}").set_value(value)
    at.text_input(key="launch_sweep_seeds").set_value(seeds).run()
    assert not at.exception, at.exception
    return at


def _check(at: AppTest) -> AppTest:
    """Fill the form (the base config: form values count once it is submitted) and press
    Check sweep."""
    for name, value in BASE_NUMBERS.items():
        at.number_input(key=f"launch_{name}").set_value(value)
    for name, value in BASE_CHOICES.items():
        at.selectbox(key=f"launch_{name}").set_value(value)
    at.text_input(key="launch_device").set_value("cpu")
    [check] = [b for b in at.get("form_submit_button") if b.label == "Check sweep"]
    return check.click().run()


def _last(store: RunStore, run_id: str, column: str) -> float:
    """The column's value in the run's last epoch row that has one, read from the store."""
    values = store.epoch_metrics(run_id)[column].dropna().to_numpy(np.float64)
    return float(values[-1])


def _cell_means(store: RunStore, sweep_id: str, column: str, field: str,
                scale: float = 1.0) -> dict[str, float]:
    """Per value of the swept field (as the axis writes it): the seed mean of the column."""
    runs = store.sweep_runs(sweep_id)
    by_value: dict[str, list[float]] = {}
    for rid, point in zip(runs["id"], runs["point"], strict=True):
        by_value.setdefault(f"{point[field]:g}", []).append(_last(store, rid, column) * scale)
    return {k: float(np.mean(v)) for k, v in by_value.items()}


def test_a_sweep_from_the_launch_form_runs_and_draws_its_phase_diagram(app, home):
    at = _sweep_mode(app(), ["arch_lr"], {"arch_lr": ",".join(ARCH_LRS)}, "0-1")
    assert any("2 points × 2 seeds = **4 runs**" in m.value for m in at.markdown)
    assert "seed" not in at.multiselect(key="launch_sweep_fields").options  # seeds: own input
    _check(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    [plan] = [s.value for s in at.success]
    assert "2 points × 2 seeds = 4 runs" in plan
    assert "unknown until the first run finishes" in plan  # an empty store: nothing measured
    store = RunStore(home)
    assert store.list_sweeps().empty and store.list_runs().empty  # checking queues nothing

    at.button(key="launch_sweep_start").click().run()
    assert not at.exception, at.exception
    sweep_id = at.query_params["sweep"]
    runs = store.sweep_runs(sweep_id)
    assert len(runs) == 4 and sorted(runs["seed"]) == [0, 0, 1, 1]
    assert {f"{p['arch_lr']:g}" for p in runs["point"]} == {"0.0003", "0.003"}
    assert (runs["epochs"] == 1).all()
    for rid in runs["id"]:
        manager().wait(rid, timeout=180)
    assert (store.sweep_runs(sweep_id)["status"] == "completed").all()

    at.run()  # the Sweep page, the sweep done
    assert not at.exception, at.exception
    assert [h.value for h in at.header] == ["Sweep"]
    done = {m.label: m.value for m in at.metric}
    assert (done["done"], done["queued"], done["running"], done["failed"]) == ("4", "0", "0", "0")
    progress = at.dataframe[0].value
    assert progress["completed"].tolist() == [2, 2] and progress["runs"].tolist() == [2, 2]

    # The phase diagram: one row (one swept field), a cell per arch_lr, the seed mean of the
    # last epoch's parameter-free mass of NB201's one cell.
    [fig] = heatmaps(at)
    heat = fig["data"][0]
    assert heat["x"] == ["0.0003", "0.003"]
    expected = _cell_means(store, sweep_id, "ind_pf_mass.cell", "arch_lr")
    z = np.asarray(heat["z"], dtype=np.float64)[0]
    np.testing.assert_allclose(z, [expected[x] for x in heat["x"]], rtol=1e-9)
    # each clickable cell carries its two runs (the seeds) to open on Compare
    cells = fig["data"][1]
    assert [sorted(c) for c in cells["customdata"]] == [
        sorted(runs.loc[[f"{p['arch_lr']:g}" == x for p in runs["point"]], "id"])
        for x in heat["x"]]

    # The headline (validation accuracy, declared with scale 100 and unit %)
    at.selectbox(key="sweep_quantity").set_value("headline").run()
    [fig] = heatmaps(at)
    expected = _cell_means(store, sweep_id, "val_acc", "arch_lr", scale=100.0)
    z = np.asarray(fig["data"][0]["z"], dtype=np.float64)[0]
    np.testing.assert_allclose(z, [expected[x] for x in fig["data"][0]["x"]], rtol=1e-9)
    assert "%" in fig["data"][0]["colorbar"]["title"]["text"]

    # Back on Launch, the same sweep is estimated from the newest finished run of its cost.
    launch = _sweep_mode(app(), ["arch_lr"], {"arch_lr": "1e-3,1e-2"}, "0-1")
    _check(launch)
    [plan] = [s.value for s in launch.success]
    newest = store.list_runs().iloc[0]["id"]
    total = 4 * 1 * float(store.epoch_metrics(newest)["epoch_time"].mean())
    assert newest in plan and f"{format_duration(total)} of run time" in plan


def test_bad_sweep_input_is_refused_next_to_its_field_and_nothing_is_queued(app, home):
    at = _sweep_mode(app(), ["space", "arch_lr"], {"space": "nb201,nope", "arch_lr": "1e-3"},
                     "0")
    _check(at)
    [error] = [e.value for e in at.error]
    assert "space" in error and "nope" in error
    assert not at.success and "launch_sweep_start" not in [b.key for b in at.button]

    at.text_input(key="launch_sweep_values_space").set_value("nb201")
    at.text_input(key="launch_sweep_values_arch_lr").set_value("1e-3,fast").run()
    _check(at)
    [error] = [e.value for e in at.error]
    assert "arch_lr" in error and "fast" in error

    at.text_input(key="launch_sweep_values_arch_lr").set_value("1e-3,1e-2")
    at.text_input(key="launch_sweep_seeds").set_value("3-1").run()
    _check(at)
    [error] = [e.value for e in at.error]
    assert error.startswith("seeds:") and "backwards" in error

    at.text_input(key="launch_sweep_seeds").set_value("0")
    at.text_input(key="launch_sweep_values_arch_lr").set_value("1e-3,0.001").run()
    _check(at)
    [error] = [e.value for e in at.error]
    assert "arch_lr" in error and "twice" in error
    store = RunStore(home)
    assert store.list_sweeps().empty and store.list_runs().empty


def test_the_sweep_page_without_sweeps_and_with_a_missing_one(app, home):
    at = app("pages/sweep.py")
    assert "No sweeps yet" in at.info[0].value
    store = RunStore(home)
    record(store, tiny(), "not a sweep")
    at = app("pages/sweep.py", sweep="sw-missing")
    assert not at.exception
    assert "`sw-missing` is not in the store" in at.warning[0].value
    assert "No sweeps yet" in at.info[0].value  # a run of no sweep is no sweep


def test_a_recorded_two_field_sweep_draws_its_grid_and_blank_cells(app, home):
    store = RunStore(home)
    mgr = RunManager(store, max_concurrent=2, threads_per_run=1)
    try:
        sweep_id = launch_sweep(mgr, SweepSpec(tiny().to_dict(),
                                               {"arch_lr": [3e-4, 3e-3],
                                                "arch_weight_decay": [0.0, 1e-2]}, seeds=[0]))
        runs = store.sweep_runs(sweep_id)
        for rid in runs["id"]:
            mgr.wait(rid, timeout=180)
    finally:
        mgr.shutdown(60)
    # one point's run is deleted: its cell stays, blank
    gone = runs["id"].iloc[-1]
    store.delete_run(gone)
    at = app("pages/sweep.py", sweep=sweep_id)
    assert not at.exception, at.exception
    assert not at.warning
    [fig] = heatmaps(at)
    heat = fig["data"][0]
    assert (heat["x"], heat["y"]) == (["0.0003", "0.003"], ["0", "0.01"])
    z = np.array([[np.nan if v is None else v for v in row] for row in heat["z"]])
    for rid, point in zip(runs["id"], runs["point"], strict=True):
        i, j = heat["y"].index(f"{point['arch_weight_decay']:g}"), heat["x"].index(
            f"{point['arch_lr']:g}")
        if rid == gone:
            assert np.isnan(z[i, j])
        else:
            assert z[i, j] == _last(store, rid, "ind_pf_mass.cell")
    # a sweep id the store lacks says so, and offers the others
    missing = app("pages/sweep.py", sweep="sw-missing")
    assert not missing.exception and "`sw-missing` is not in the store" in missing.warning[0].value
    assert [o.split(" · ")[0] for o in missing.selectbox(key="sweep_id").options] == [sweep_id]
    # the axes swap
    at.selectbox(key="sweep_x").set_value("arch_weight_decay").run()
    [fig] = heatmaps(at)
    assert (fig["data"][0]["x"], fig["data"][0]["y"]) == (["0", "0.01"], ["0.0003", "0.003"])


def test_a_third_swept_field_is_held_at_one_value(app, home):
    store = RunStore(home)
    mgr = RunManager(store, max_concurrent=2, threads_per_run=1)
    try:
        sweep_id = launch_sweep(mgr, SweepSpec(tiny().to_dict(), {
            "arch_lr": [3e-3], "arch_weight_decay": [0.0], "lr": [0.025, 0.1]}, seeds=[0]))
        runs = store.sweep_runs(sweep_id)
        for rid in runs["id"]:
            mgr.wait(rid, timeout=180)
    finally:
        mgr.shutdown(60)
    # the two lr values end at different masses, so the held value shows in the cell
    assert len({_last(store, r, "ind_pf_mass.cell") for r in runs["id"]}) == 2
    at = app("pages/sweep.py", sweep=sweep_id)
    assert not at.exception, at.exception
    assert at.selectbox(key="sweep_at_lr").options == ["0.025", "0.1"]
    for k, lr in enumerate((0.025, 0.1)):
        if k:
            at.selectbox(key="sweep_at_lr").set_value(lr).run()
        [fig] = heatmaps(at)
        [rid] = [r for r, p in zip(runs["id"], runs["point"], strict=True) if p["lr"] == lr]
        assert fig["data"][0]["z"] == [[_last(store, rid, "ind_pf_mass.cell")]]


def _bands_script(run_ids: list[str]) -> None:
    from pages import common
    from pages.seedbands import seed_bands_section

    views = {rid: common.load_run(rid, steps=False) for rid in run_ids}
    seed_bands_section(views, {rid: f"run {i}" for i, rid in enumerate(run_ids)})


def test_seed_bands_draw_mean_and_band_of_runs_differing_only_in_seed(app, home):
    store = RunStore(home)
    ids = [record(store, tiny(epochs=2, seed=s), f"s{s}") for s in (0, 1, 2)]
    other = record(store, tiny(epochs=2, seed=0, arch_lr=1e-2), "other")
    at = AppTest.from_function(_bands_script, args=([*ids, other],), default_timeout=60).run()
    assert not at.exception, at.exception
    assert "Seed bands" in [h.value for h in at.subheader]
    assert at.selectbox(key="seedbands_column").value == "val_acc"  # the declared headline
    [fig] = plotly_figures(at)
    means = [t for t in fig["data"] if t.get("fill") is None and "mean" in t["hovertemplate"]]
    assert len(means) == 2  # two groups: arch_lr=0.0003 (3 seeds) and arch_lr=0.01 (1)
    acc = np.array([store.epoch_metrics(r)["val_acc"].to_numpy(np.float64) for r in ids]) * 100
    three = next(t for t in means if "(n=3)" in t["name"])
    np.testing.assert_allclose(array(three["y"]), acc.mean(axis=0), rtol=1e-9)
    band = next(t for t in fig["data"] if t.get("fill") == "toself"
                and t["legendgroup"] == three["legendgroup"])
    np.testing.assert_allclose(array(band["y"]), np.concatenate(
        [acc.max(axis=0), acc.min(axis=0)[::-1]]), rtol=1e-9)

    at.radio(key="seedbands_kind").set_value("sd")
    at.checkbox(key="seedbands_raw").check().run()
    [fig] = plotly_figures(at)
    band = next(t for t in fig["data"] if t.get("fill") == "toself"
                and t["legendgroup"] == three["legendgroup"])
    sd = acc.std(axis=0, ddof=1)
    np.testing.assert_allclose(array(band["y"]), np.concatenate(
        [acc.mean(axis=0) + sd, (acc.mean(axis=0) - sd)[::-1]]), rtol=1e-9)
    assert {t["name"] for t in fig["data"]} >= {"run 0", "run 1", "run 2", "run 3"}

    # an indicator column works the same way
    at.selectbox(key="seedbands_column").set_value("ind_pf_mass.cell").run()
    [fig] = plotly_figures(at)
    pf = np.array([store.epoch_metrics(r)["ind_pf_mass.cell"].to_numpy(np.float64) for r in ids])
    three = next(t for t in fig["data"] if "(n=3)" in t.get("name", ""))
    np.testing.assert_allclose(array(three["y"]), pf.mean(axis=0), rtol=1e-9)

    # no two runs differing only in seed: no section
    at = AppTest.from_function(_bands_script, args=([ids[0], other],), default_timeout=60).run()
    assert not at.exception and not at.subheader
