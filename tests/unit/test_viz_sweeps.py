"""Sweep figures (darts_engine/viz/sweeps.py) on hand-made run tables: seed groups, bands, the
end-of-run quantities and the phase diagram, with the numbers worked out by hand."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

import darts_engine  # noqa: F401  (registers the spaces the headline cell comes from)
from darts_engine.events import metric
from darts_engine.viz.palette import run_color
from darts_engine.viz.sweeps import (
    available_quantities,
    band,
    end_of_run_values,
    phase_diagram_figure,
    phase_points,
    phase_table,
    quantity_axis,
    seed_band_figure,
    seed_groups,
    with_truth,
)
from tests.helpers import array


def figure_json(fig) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def epochs(values, column="val_acc") -> pd.DataFrame:
    return pd.DataFrame({"epoch": np.arange(len(values)), column: values})


# Three runs of unequal length; c did not measure epoch 1 (NaN).
CURVES = {"a": epochs([1.0, 2.0, 3.0]), "b": epochs([3.0, 6.0]), "c": epochs([5.0, np.nan])}


# --- bands -----------------------------------------------------------------------------------
def test_minmax_band_uses_the_runs_that_reached_each_epoch():
    b = band(CURVES, "val_acc", "minmax")
    assert b["epoch"].tolist() == [0, 1, 2]
    assert b["n"].tolist() == [3, 2, 1]              # c's NaN at epoch 1 does not count
    assert np.allclose(b["mean"], [3.0, 4.0, 3.0])   # (1+3+5)/3, (2+6)/2, 3
    assert np.allclose(b["lo"], [1.0, 2.0, 3.0])
    assert np.allclose(b["hi"], [5.0, 6.0, 3.0])


def test_sd_band_is_the_sample_sd_and_zero_for_one_run():
    b = band(CURVES, "val_acc", "sd")
    # epoch 0: deviations -2, 0, 2 -> var 8/2 = 4; epoch 1: -2, 2 -> var 8/1; epoch 2: one run
    sd = np.array([2.0, math.sqrt(8.0), 0.0])
    assert np.allclose(b["lo"], b["mean"] - sd) and np.allclose(b["hi"], b["mean"] + sd)
    assert np.allclose(sd[:2], [np.std([1, 3, 5], ddof=1), np.std([2, 6], ddof=1)])


def test_band_of_a_column_no_run_has_is_empty_and_a_bad_kind_is_refused():
    assert band(CURVES, "ind_pf_mass.cell").empty
    with pytest.raises(ValueError, match="minmax"):
        band(CURVES, "val_acc", "iqr")


# --- seed groups -----------------------------------------------------------------------------
def run(run_id, seed, sweep_point=None, **cfg):
    base = {"space": "nb201", "arch_lr": 1e-3, "arch_weight_decay": 0.0, "seed": seed}
    out = {"run_id": run_id, "config": {**base, **cfg}}
    return out if sweep_point is None else {**out, "sweep_point": sweep_point}


def test_runs_that_differ_only_in_seed_and_ignored_fields_form_one_group():
    runs = [run("r1", 0, name="first", threads=1), run("r2", 1, name="second", threads=2,
            device="cuda", log_every=5, alpha_every=0, data_root="/elsewhere"),
            run("r3", 0, arch_lr=3e-3), run("r4", 1, arch_lr=3e-3)]
    groups = seed_groups(runs)
    assert [g.run_ids for g in groups] == [("r1", "r2"), ("r3", "r4")]
    assert [g.seeds for g in groups] == [(0, 1), (0, 1)]
    assert [g.label for g in groups] == ["arch_lr=0.001", "arch_lr=0.003"]
    assert groups[1].point == {"arch_lr": 3e-3}


def test_a_field_difference_splits_and_labels_follow_the_sweep_order():
    point = {"arch_weight_decay": 0.0, "arch_lr": 1e-3}
    runs = [run("a", 0, point), run("b", 0, {"arch_weight_decay": 1e-3, "arch_lr": 3e-3},
                                   arch_weight_decay=1e-3, arch_lr=3e-3),
            run("c", 0, point, epochs=5)]           # an unswept field differs too
    groups = seed_groups(runs)
    assert [g.run_ids for g in groups] == [("a",), ("b",), ("c",)]
    assert groups[1].label == "arch_weight_decay=0.001 · arch_lr=0.003 · epochs=None"
    assert groups[2].label == "arch_weight_decay=0 · arch_lr=0.001 · epochs=5"


def test_one_group_is_labelled_all_runs():
    assert [(g.label, g.run_ids) for g in seed_groups([run("a", 0), run("b", 3)])] == [
        ("all runs", ("a", "b"))]


def test_seed_band_figure_draws_each_group_in_one_hue_with_its_runs_on_request():
    groups = seed_groups([run("a", 0), run("b", 1), run("c", 2), run("d", 0, arch_lr=3e-3)])
    curves = {**CURVES, "d": epochs([0.5, 0.7])}
    fig = figure_json(seed_band_figure(groups, curves, "val_acc", "minmax", show_runs=True,
                                       label="validation accuracy", unit="%", scale=100.0))
    fills = [t for t in fig["data"] if t.get("fill") == "toself"]
    means = [t for t in fig["data"] if t.get("showlegend") is not False]
    raws = [t for t in fig["data"] if t.get("fill") is None and t.get("showlegend") is False]
    assert len(fills) == len(means) == 2 and len(raws) == 4
    # the band: hi forwards then lo backwards, scaled; the mean on top
    assert np.allclose(array(fills[0]["y"]), [500, 600, 300, 300, 200, 100])
    assert np.allclose(array(fills[0]["x"]), [1, 2, 3, 3, 2, 1])
    assert np.allclose(array(means[0]["y"]), [300, 400, 300])
    assert np.allclose(array(means[1]["y"]), [50, 70])
    assert means[0]["name"] == "arch_lr=0.001 (n=3)"
    for i, (fill, mean) in enumerate(zip(fills, means, strict=True)):
        r, g, b = (int(run_color(i)[k:k + 2], 16) for k in (1, 3, 5))
        assert mean["line"]["color"] == run_color(i)
        assert fill["fillcolor"].startswith(f"rgba({r},{g},{b},")
    assert fig["layout"]["yaxis"]["title"]["text"] == "validation accuracy (%)"
    plain = figure_json(seed_band_figure(groups, curves, "val_acc", "sd"))
    assert len(plain["data"]) == 4                   # no raw runs unless asked


def test_seed_band_figure_draws_an_indicator_column():
    curves = {r: epochs([0.2, 0.4 + i], "ind_pf_mass.cell") for i, r in enumerate("ab")}
    fig = figure_json(seed_band_figure(seed_groups([run("a", 0), run("b", 1)]), curves,
                                       "ind_pf_mass.cell", "sd"))
    sd = np.std([0.4, 1.4], ddof=1)
    assert np.allclose(array(fig["data"][0]["y"]), [0.2, 0.9 + sd, 0.9 - sd, 0.2])


# --- end-of-run quantities -------------------------------------------------------------------
def darts_view(**cols):
    ep = pd.DataFrame({"epoch": [0, 1, 2], **cols})
    return SimpleNamespace(epochs=ep, config={"space": "darts"},
                           metrics=(metric("train_neg_mse", "train −MSE", split="train"),
                                    metric("neg_mse", "−MSE", headline=True)))


def test_end_of_run_values_read_the_last_row_of_the_headline_cell_and_say_which_column():
    views = {"d": darts_view(**{"ind_pf_mass.reduce": [0.1, 0.2, 0.9],
                                "ind_pf_mass.normal": [0.3, 0.4, 0.5],
                                "ind_skip_count.normal": [0.0, 1.0, np.nan],  # not measured
                                "neg_mse": [-3.0, -2.0, -1.5]}),
             "n": epochs([0.1, 0.6], "ind_pf_mass.cell").assign(val_acc=[0.5, 0.75])}
    pf = end_of_run_values(views, "pf_mass")
    assert pf["value"].tolist() == [0.5, 0.6]      # DARTS: the normal cell
    assert pf["column"].tolist() == ["ind_pf_mass.normal", "ind_pf_mass.cell"]
    assert pf["epoch"].tolist() == [2, 1]
    assert end_of_run_values(views, "pf_mass.reduce")["value"].iloc[0] == 0.9
    skip = end_of_run_values(views, "skip_count")
    assert skip["value"].iloc[0] == 1.0 and skip["epoch"].iloc[0] == 1   # last row that has it
    assert math.isnan(skip["value"].iloc[1]) and skip["column"].iloc[1] == ""
    head = end_of_run_values(views, "headline")
    assert head["value"].tolist() == [-1.5, 0.75]  # declared neg_mse; a bare table: val_acc
    assert head["column"].tolist() == ["neg_mse", "val_acc"]


def test_the_quantities_a_page_offers_and_how_they_are_drawn():
    view = darts_view(**{"ind_pf_mass.normal": [0.3, 0.4, 0.5], "neg_mse": [-3.0, -2.0, -1.0]})
    retrain = epochs([0.4, 0.8], "test_acc")
    assert available_quantities({"d": view}) == ["pf_mass", "headline"]
    assert available_quantities({"r": retrain}) == ["test_acc"]   # a bare table: no val_acc
    assert available_quantities({"d": view, "r": retrain}) == ["pf_mass", "headline", "test_acc"]
    assert quantity_axis("headline", view.metrics) == ("−MSE", "", 1.0)
    assert quantity_axis("test_acc") == ("retrain test accuracy", "%", 100.0)
    assert quantity_axis("pf_mass.reduce")[0] == "parameter-free mass (reduce cell)"
    with pytest.raises(ValueError, match="quantity must be one of"):
        quantity_axis("val_loss")


def test_retrain_and_truth_accuracy_when_present():
    retrain = epochs([0.4, 0.8], "test_acc")
    search = with_truth(epochs([0.5, 0.6]), {"cifar10": np.array([91.0, 93.5]),
                                             "cifar100": np.array([70.0, 71.0])})
    acc = end_of_run_values({"r": retrain, "s": search}, "test_acc")
    assert acc["value"].iloc[0] == 0.8 and math.isnan(acc["value"].iloc[1])
    truth = end_of_run_values({"s": search}, "truth")
    assert truth["value"].tolist() == [93.5] and truth["column"].tolist() == ["truth_cifar10"]
    with pytest.raises(ValueError, match="quantity must be one of"):
        end_of_run_values({"s": search}, "val_loss")


# --- the phase diagram -----------------------------------------------------------------------
XS, YS = [3e-4, 1e-3, 3e-3], [0.0, 1e-3]
# Two seeds per cell: (seed 0, seed 1) by (y, x).
PAIRS = {(0.0, 3e-4): (0.2, 0.4), (0.0, 1e-3): (0.3, 0.5), (0.0, 3e-3): (0.6, 1.0),
         (1e-3, 3e-4): (0.1, 0.1), (1e-3, 1e-3): (0.2, 0.6), (1e-3, 3e-3): (0.5, 0.7)}


def grid_runs():
    runs, values = [], []
    for (y, x), pair in PAIRS.items():
        for seed, v in enumerate(pair):
            run_id = f"x{XS.index(x)}y{YS.index(y)}s{seed}"
            runs.append(run(run_id, seed, {"arch_lr": x, "arch_weight_decay": y}))
            values.append({"run_id": run_id, "value": v})
    return runs, pd.DataFrame(values)


def test_phase_table_gives_seed_means_spreads_and_counts_per_cell():
    runs, values = grid_runs()
    points = phase_points(runs, values, ["arch_lr", "arch_weight_decay"])
    t = phase_table(points, "arch_lr", "arch_weight_decay")
    assert t.mean.columns.tolist() == XS and t.mean.index.tolist() == YS
    assert np.allclose(t.mean.to_numpy(), [[0.3, 0.4, 0.8], [0.1, 0.4, 0.6]])
    ranges = np.array([[0.2, 0.2, 0.4], [0.0, 0.4, 0.2]])
    assert np.allclose(t.spread("minmax").to_numpy(), ranges)
    assert np.allclose(t.spread("sd").to_numpy(), ranges / math.sqrt(2))  # sd of a pair
    assert (t.count.to_numpy() == 2).all()
    assert t.run_ids.iat[1, 2] == ("x2y1s0", "x2y1s1")


def test_a_point_without_a_finished_run_is_a_blank_cell_not_zero():
    runs, values = grid_runs()
    values.loc[values["run_id"] == "x2y1s1", "value"] = np.nan     # still running
    points = phase_points(runs, values, ["arch_lr", "arch_weight_decay"])
    points = points[~points["run_id"].isin(["x1y1s0", "x1y1s1"])]  # not started
    t = phase_table(points, "arch_lr", "arch_weight_decay", x_values=XS, y_values=YS)
    assert t.count.iat[1, 1] == 0 and math.isnan(t.mean.iat[1, 1]) and t.run_ids.iat[1, 1] == ()
    assert t.count.iat[1, 2] == 1 and t.mean.iat[1, 2] == 0.5 and t.sd.iat[1, 2] == 0.0
    fig = figure_json(phase_diagram_figure(t, label="parameter-free mass", spread="minmax"))
    z = fig["data"][0]["z"]
    assert z[1][1] is None and z[1][2] == 0.5
    assert fig["data"][0]["text"][1][1] == ""
    assert "no finished run yet" in fig["data"][0]["hovertext"][1][1]
    picks, empty = fig["data"][1:]
    assert len(picks["x"]) == 5 and ("0.001", "0.001") not in zip(picks["x"], picks["y"])
    assert list(zip(empty["x"], empty["y"], strict=True)) == [("0.001", "0.001")]


def test_phase_diagram_carries_the_table_in_z_customdata_and_hover():
    runs, values = grid_runs()
    t = phase_table(phase_points(runs, values, ["arch_lr", "arch_weight_decay"]),
                    "arch_lr", "arch_weight_decay")
    fig = figure_json(phase_diagram_figure(t, label="accuracy", unit="%", scale=100.0))
    h = fig["data"][0]
    assert h["type"] == "heatmap"
    assert np.allclose(np.array(h["z"], dtype=float), t.mean.to_numpy() * 100)
    assert h["x"] == ["0.0003", "0.001", "0.003"] and h["y"] == ["0", "0.001"]
    assert fig["layout"]["xaxis"]["type"] == fig["layout"]["yaxis"]["type"] == "category"
    assert h["customdata"][0][2] == ["x2y0s0", "x2y0s1"]
    assert h["text"][0][2] == "80"
    hover = h["hovertext"][0][2]
    assert "arch_lr = 0.003" in hover and "arch_weight_decay = 0" in hover
    assert "n = 2" in hover and f"± {40 / math.sqrt(2):.3g} (sd)" in hover
    assert h["colorbar"]["title"]["text"] == "accuracy (%)"
    assert fig["layout"]["xaxis"]["categoryarray"] == h["x"]      # swept order, not sorted


def test_each_cell_with_runs_is_a_clickable_point_carrying_its_run_ids():
    # Streamlit's on_select returns no heatmap cells: the page reads the "cells" scatter.
    runs, values = grid_runs()
    t = phase_table(phase_points(runs, values, ["arch_lr", "arch_weight_decay"]),
                    "arch_lr", "arch_weight_decay")
    heat, picks, _ = figure_json(phase_diagram_figure(t))["data"]
    assert picks["type"] == "scatter" and picks["mode"] == "markers" and len(picks["x"]) == 6
    for x, y, ids, hover in zip(picks["x"], picks["y"], picks["customdata"],
                                picks["hovertext"], strict=True):
        i, j = heat["y"].index(y), heat["x"].index(x)
        assert ids == heat["customdata"][i][j] == list(t.run_ids.iat[i, j])
        assert hover == heat["hovertext"][i][j]


def test_one_swept_field_gives_a_one_row_heatmap():
    points = pd.DataFrame({"run_id": ["a", "b", "c"], "arch_lr": [1e-3, 1e-3, 3e-3],
                           "value": [1.0, 2.0, 4.0]})
    t = phase_table(points, "arch_lr", None)
    assert t.mean.shape == (1, 2) and np.allclose(t.mean.to_numpy(), [[1.5, 4.0]])
    fig = figure_json(phase_diagram_figure(t))
    assert len(fig["data"][0]["z"]) == 1 and fig["data"][0]["customdata"] == [[["a", "b"], ["c"]]]
    assert fig["data"][0]["y"] == ["value"]          # the one row is named by the quantity
    with pytest.raises(ValueError, match="arch_weight_decay"):
        phase_table(points, "arch_lr", "arch_weight_decay")
