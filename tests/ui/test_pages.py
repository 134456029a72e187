"""Every page through Streamlit's AppTest, on stores filled by small real searches."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from darts_engine import INDICATORS, METHODS, SPACES, ConfigError, SearchConfig
from darts_engine.model.genotype import softmax
from darts_engine.monitor.alerts import rule_docs
from darts_engine.runs.store import RunStore
from darts_engine.train.data import check_config
from darts_engine.train.presets import DEFAULT_PRESET, PRESETS, preset_config, preset_values
from darts_engine.viz.palette import INDICATOR_COLOR, PANEL_GAP_X
from pages import common
from tests.helpers import array, heatmaps, manager, plotly_figures, record, tiny


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A pair (same seed, bi-level and single-level; α every step) and a DARTS-space run."""
    home = tmp_path_factory.mktemp("filled") / "runs"
    s = RunStore(home)
    ids = {"bi": record(s, tiny(epochs=2, alpha_every=1), "pair · bi-level"),
           "single": record(s, tiny(epochs=2, alpha_every=1, algorithm="single"),
                            "pair · single-level"),
           "darts": record(s, tiny(space="darts", epochs=1, init_channels=4), "darts")}
    s.close()
    return home, ids


@pytest.fixture
def runs(filled, home):
    """The filled store copied into this test's DARTBOARD_HOME; returns the run ids."""
    shutil.copytree(filled[0], home)
    return filled[1]


def next_sibling(at: AppTest, key: str):
    """The element right after the widget with this key, in the same container."""
    stack = [at.main]
    while stack:
        block = stack.pop()
        kids = list(getattr(block, "children", {}).values())
        for i, node in enumerate(kids):
            if getattr(node, "key", None) == key:
                return kids[i + 1] if i + 1 < len(kids) else None
        stack += kids
    raise AssertionError(f"no widget with key {key!r}")


# --- presets --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_build_valid_configs(name):
    cfg = preset_config(name)
    assert cfg.to_dict() == {**SearchConfig().to_dict(), **PRESETS[name].overrides}
    if cfg.dataset in ("digits", "shapes"):
        check_config(cfg)  # built-in data: nothing to download, batch fits the split


def test_collapse_demo_is_the_default_pair():
    assert DEFAULT_PRESET.startswith("Collapse demo") and PRESETS[DEFAULT_PRESET].pair
    cfg = preset_config(DEFAULT_PRESET)
    assert (cfg.space, cfg.dataset, cfg.init_channels, cfg.cells, cfg.algorithm,
            cfg.batch_size) == ("nb201", "digits", 16, 1, "bilevel-1st", 64)


# --- launch ---------------------------------------------------------------------------------
def test_launch_form_is_built_from_the_engine(app, home):
    at = app()
    assert at.selectbox(key="launch_preset").value == DEFAULT_PRESET
    values = preset_values(DEFAULT_PRESET)
    assert at.selectbox(key="launch_space").options == SPACES.names()
    assert at.selectbox(key="launch_space").value == values["space"]
    assert at.number_input(key="launch_init_channels").value == 16
    assert float(at.text_input(key="launch_arch_lr").value) == values["arch_lr"]
    assert at.checkbox(key="launch_pair").value is True
    at.selectbox(key="launch_preset").set_value("NAS-Bench-201 settings (CIFAR-10)").run()
    assert at.number_input(key="launch_cells").value == 5
    assert at.checkbox(key="launch_nesterov").value is True
    assert at.checkbox(key="launch_pair").value is False


@pytest.mark.parametrize("field, value, expected", [
    ("batch_size", 0, {"batch_size": 0}),
    ("lr", "fast", {"lr": "fast"}),
    ("lr_min", "0.5", {"lr_min": "0.5"}),            # cross-field: lr_min > lr
    ("batch_size", 4000, {"batch_size": 4000}),      # data check: larger than digits' split
])
def test_launch_rejects_bad_values_next_to_the_field(app, home, field, value, expected):
    at = app()
    widget = (at.number_input(key=f"launch_{field}") if isinstance(value, int)
              else at.text_input(key=f"launch_{field}"))
    widget.set_value(value)
    at.form_submit_button[0].click().run()
    assert not at.exception
    with pytest.raises(ConfigError) as engine:  # the engine's own message for the same input
        cfg = SearchConfig.from_dict({**preset_values(DEFAULT_PRESET), **expected})
        check_config(cfg)
    assert engine.value.field == field
    error = next_sibling(at, f"launch_{field}")
    assert error is not None and error.type == "error" and error.value == str(engine.value)
    assert RunStore(home).list_runs().empty and not manager().live_ids()


@pytest.mark.parametrize("path", ["../outside", "/etc"])
def test_launch_refuses_a_data_root_outside_the_data_root(app, home, path):
    at = app()
    at.text_input(key="launch_data_root").set_value(path)
    at.form_submit_button[0].click().run()
    assert not at.exception
    error = next_sibling(at, "launch_data_root")
    assert error is not None and error.type == "error"
    assert "data_root must stay inside" in error.value
    assert RunStore(home).list_runs().empty


def test_launch_creates_a_run_and_opens_it(app, home):
    at = app()
    at.selectbox(key="launch_preset").set_value("Quick look (seconds)").run()
    for field, value in {"epochs": 2, "data_limit": 128, "init_channels": 4}.items():
        at.number_input(key=f"launch_{field}").set_value(value)
    at.text_input(key="launch_device").set_value("cpu")
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    run_id = at.query_params["run"]
    assert at.selectbox(key="live_run").value == run_id  # now on the live page
    manager().wait(run_id, timeout=120)
    run = RunStore(home).get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 2
    assert run["name"] == "quick look" and run["config"]["dataset"] == "shapes"


def test_launch_pair_runs_both_and_opens_the_comparison(app, home):
    at = app()
    at.selectbox(key="launch_preset").set_value("Quick look (seconds)").run()
    at.checkbox(key="launch_pair").check()
    for field, value in {"epochs": 1, "data_limit": 128, "init_channels": 4}.items():
        at.number_input(key=f"launch_{field}").set_value(value)
    at.text_input(key="launch_device").set_value("cpu")
    at.form_submit_button[0].click().run()
    assert not at.exception
    ids = at.query_params["runs"].split(",")
    assert len(ids) == 2 and at.multiselect(key="compare_runs").value == ids
    for run_id in ids:
        manager().wait(run_id, timeout=120)
    store = RunStore(home)
    bi, single = (store.get_run(r)["config"] for r in ids)
    assert (bi["algorithm"], single["algorithm"]) == ("bilevel-1st", "single")
    assert bi["seed"] == single["seed"]


# --- live -------------------------------------------------------------------------------------
def test_live_page_of_a_finished_run(app, home, runs):
    at = app("pages/live.py", run=runs["bi"])
    store = RunStore(home)
    run = store.get_run(runs["bi"])
    space = SPACES.get("nb201")
    (fig,) = heatmaps(at)
    trace = fig["data"][0]
    z = array(trace["z"])
    assert z.shape == (6, 5) and (trace["zmin"], trace["zmax"]) == (0, 1)
    assert trace["x"] == list(space.ops) and trace["y"] == list(space.edge_labels)
    assert np.all((z >= 0) & (z <= 1)) and np.allclose(z.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(z, softmax(store.latest_alphas(runs["bi"])["cell"]), atol=1e-6)
    (dag,) = at.get("graphviz_chart")
    assert dag.proto.spec.startswith("digraph") and dag.proto.spec.count(" -> ") == 6
    assert run["genotype"] in [c.value for c in at.code]
    assert "completed" in at.metric[0].value
    names = {tr.get("name") for f in plotly_figures(at) for tr in f["data"]}
    assert {"train", "held-out (per epoch)"} <= names  # the loss / accuracy curves


def test_live_scrub_shows_an_earlier_snapshot(app, home, runs):
    at = app("pages/live.py", run=runs["bi"])
    slider = at.slider(key=f"live_scrub_{runs['bi']}")
    assert slider.value == slider.max > 0 and slider.disabled  # following the latest
    at.checkbox(key=f"live_follow_{runs['bi']}").uncheck().run()
    at.slider(key=f"live_scrub_{runs['bi']}").set_value(0).run()
    _, first = RunStore(home).alpha_history(runs["bi"], "cell", source="step")
    z = array(heatmaps(at)[0]["data"][0]["z"])
    np.testing.assert_allclose(z, softmax(first[0]), atol=1e-6)


def test_live_pause_resume_stop(app, home):
    at = app()
    run_id = manager().launch(tiny(epochs=200, alpha_every=1), "long")
    at.query_params["run"] = run_id
    at.switch_page("pages/live.py").run()
    deadline = time.monotonic() + 60
    while manager().status(run_id)["step"] == 0:  # running for real
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at.run()
    at.button(key="live_pause").click().run()
    assert manager().status(run_id)["state"] == "paused"
    assert RunStore(home).get_run(run_id)["status"] == "paused"
    assert "paused" in at.metric[0].value
    at.button(key="live_resume").click().run()
    assert manager().status(run_id)["state"] == "running"
    at.button(key="live_stop").click().run()
    manager().wait(run_id, timeout=60)
    assert RunStore(home).get_run(run_id)["status"] == "stopped"
    at.run()
    assert "stopped" in at.metric[0].value
    assert at.button(key="live_resume").label == "Resume"  # from its checkpoint


def test_live_darts_space_has_a_heatmap_and_cell_per_cell_type(app, runs):
    at = app("pages/live.py", run=runs["darts"])
    maps = heatmaps(at)
    assert [f["layout"]["title"]["text"] for f in maps] == ["normal cell", "reduce cell"]
    assert all(array(f["data"][0]["z"]).shape == (14, 8) for f in maps)
    assert len(at.get("graphviz_chart")) == 2


def test_live_failed_run_shows_its_error_without_traceback(app, home, tmp_path):
    store = RunStore(home)
    bad = tiny(dataset="cifar10", data_root=str(tmp_path / "nothing-here"))
    run_id = record(store, bad, "broken")
    at = app("pages/live.py", run=run_id)
    assert store.get_run(run_id)["status"] == "failed"
    texts = [e.value for e in at.error]
    assert any("nothing-here" in t for t in texts), texts
    assert not any("Traceback" in str(el.value) for el in [*at.error, *at.code])


def test_live_indicator_panel_shows_sparklines_and_the_alert_that_fired(app, home):
    # A real tiny search whose user threshold on parameter-free mass is low enough to fire
    # (NB201 starts at 2/5 parameter-free weight per edge, above 0.1).
    store = RunStore(home)
    run_id = record(store, tiny(epochs=2, alert_pf_mass=0.1, alert_skip_count=0), "collapsed")
    fired = store.alerts(run_id)
    assert "pf-mass" in set(fired["rule"])
    at = app("pages/live.py", run=run_id)
    assert "Collapse indicators" in [h.value for h in at.subheader]
    epochs = store.epoch_metrics(run_id)
    recorded = {c[len("ind_"):] for c in epochs.columns if c.startswith("ind_")}
    picker = at.multiselect(key="live_indicators")
    assert set(picker.options) == {common.indicator_label(k) for k in recorded}
    shown = picker.value
    assert {"skip_mass.cell", "none_mass.cell", "pf_mass.cell", "entropy.cell"} <= set(shown)

    def panel() -> dict:
        return next(f for f in plotly_figures(at)
                    if any(a["text"] == "<b>Parameter-free mass</b>"
                           for a in f["layout"].get("annotations", [])))

    fig = panel()
    titles = [a["text"] for a in fig["layout"]["annotations"] if a["text"].startswith("<b>")]
    assert titles == [f"<b>{common.indicator_label(k)}</b>" for k in shown]
    alert_x = {int(e) for e in fired["epoch"]}
    span = max(int(epochs["epoch"].max()), 1)
    lines = [sh for sh in fig["layout"]["shapes"] if sh["type"] == "line"]
    assert len(lines) == len(alert_x) * len(shown)       # the alert on every panel's timeline
    pf = epochs["ind_pf_mass.cell"].to_numpy()
    trace = next(t for t in fig["data"] if t["line"]["color"] == INDICATOR_COLOR)
    values = array(trace["customdata"]).astype(float).reshape(-1, 2)[:, 1]
    assert any(np.allclose(values[i:i + len(pf)], pf) for i in range(len(values)))
    assert all(round((sh["x0"] % (1 + PANEL_GAP_X)) * span) in alert_x for sh in lines)
    badge = next(m.value for m in at.markdown if "pf-mass" in m.value)
    message = fired.loc[fired["rule"] == "pf-mass", "message"].iloc[0]
    source = next(r["source"] for r in rule_docs() if r["name"] == "pf-mass")
    assert "red-badge" in badge and message in badge and source in badge
    assert "[see the Guide](/guide#alerts)" in badge
    assert "ALGORITHMS.md" not in badge
    labels = [m.label for m in at.metric]
    assert "skip_connect mass" in labels and "none mass" in labels
    assert "Rises steadily" in at.metric[labels.index("skip_connect mass")].help
    # Any recorded indicator can be added; the panel follows.
    extra = next(k for k in sorted(recorded) if k not in shown)
    picker.set_value([*shown, extra]).run()
    assert f"<b>{common.indicator_label(extra)}</b>" in [a["text"] for a in
                                                          panel()["layout"]["annotations"]]


# --- compare ----------------------------------------------------------------------------------
def test_compare_two_runs_shows_both(app, home, runs):
    ids = [runs["bi"], runs["single"]]
    at = app("pages/compare.py", runs=",".join(ids))
    assert at.multiselect(key="compare_runs").value == ids
    assert len(heatmaps(at)) == 2 and len(at.get("graphviz_chart")) == 2
    curves = next(f for f in plotly_figures(at) if f["data"][0]["type"] == "scatter")
    assert {tr["legendgroup"] for tr in curves["data"]} == {"pair · bi-level",
                                                            "pair · single-level"}
    table = at.dataframe[-1].value
    assert list(table.columns) == ["pair · bi-level", "pair · single-level"]
    assert table.loc["algorithm"].tolist() == ["bilevel-1st", "single"]
    # the runs' declared headline metric, scaled and with its unit, as the store recorded it
    best = [RunStore(home).get_run(r)["best_val_acc"] for r in ids]
    assert table.loc["best validation accuracy"].tolist() == [f"{100 * b:.1f}%" for b in best]
    at.checkbox(key="compare_follow").uncheck().run()
    at.slider(key="compare_epoch").set_value(1).run()
    assert any(h.value == "Genotype diff at epoch 1" for h in at.subheader)


def test_compare_overlays_a_chosen_indicator(app, home, runs):
    ids = [runs["bi"], runs["single"]]
    at = app("pages/compare.py", runs=",".join(ids))
    picker = at.selectbox(key="compare_indicator")
    # runs from no preset open on parameter-free mass (DEFAULT_INDICATOR)
    assert picker.value == "pf_mass.cell" and "none mass" in picker.options
    picker.set_value("entropy.cell").run()
    store = RunStore(home)
    title = "Decidedness (normalised entropy)"
    overlay = next(f for f in plotly_figures(at)
                   if f["layout"].get("yaxis", {}).get("title", {}).get("text") == title)
    assert any("1 = all ops equal" in c.value for c in at.caption)  # the explanation
    assert [t["name"] for t in overlay["data"]] == ["pair · bi-level", "pair · single-level"]
    for trace, rid in zip(overlay["data"], ids, strict=True):
        np.testing.assert_allclose(array(trace["y"]),
                                   store.epoch_metrics(rid)["ind_entropy.cell"])


# --- runs ---------------------------------------------------------------------------------
def test_runs_page_lists_and_deletes(app, home, runs):
    at = app("pages/runs.py")
    listed = at.dataframe[0].value
    assert set(listed["id"]) == set(runs.values())
    assert set(listed["algorithm"]) == {"bilevel-1st", "single"}
    # the declared headline (classification: validation accuracy), shown in %
    stored = RunStore(home).list_runs().set_index("id")["best_val_acc"] * 100
    np.testing.assert_allclose(listed.set_index("id")["best validation accuracy"],
                               stored.loc[listed["id"]], rtol=1e-6)
    at.selectbox(key="runs_selected").set_value(runs["darts"]).run()
    at.button(key="runs_delete").click().run()
    assert at.warning and "cannot be undone" in at.warning[0].value
    assert len(RunStore(home).list_runs()) == 3  # nothing deleted before the confirmation
    at.button(key="runs_delete_yes").click().run()
    assert set(RunStore(home).list_runs()["id"]) == {runs["bi"], runs["single"]}
    assert set(at.dataframe[0].value["id"]) == {runs["bi"], runs["single"]}
    assert not (home / runs["darts"]).exists()


def test_runs_page_lists_a_run_started_from_the_cli(app, home, capsys):
    from darts_engine.cli import main

    assert main(["--home", str(home), "search", "--no-progress", "--dataset", "shapes",
                 "--space", "nb201", "--data-limit", "128", "--batch-size", "32",
                 "--epochs", "1", "--init-channels", "4", "--cells", "1", "--device", "cpu",
                 "--name", "from the cli"]) == 0
    at = app("pages/runs.py")
    listed = at.dataframe[0].value
    assert listed["name"].tolist() == ["from the cli"]
    assert listed["status"].tolist() == ["completed"]


def test_runs_page_renames(app, home, runs):
    at = app("pages/runs.py")
    at.selectbox(key="runs_selected").set_value(runs["bi"]).run()
    at.text_input(key=f"runs_new_name_{runs['bi']}").set_value("lecture demo")
    at.form_submit_button[0].click().run()
    assert RunStore(home).get_run(runs["bi"])["name"] == "lecture demo"
    assert "lecture demo" in set(at.dataframe[0].value["name"])


def test_pages_without_runs_point_to_launch(app):
    for page in ("pages/live.py", "pages/compare.py", "pages/runs.py"):
        at = app(page)
        assert "No runs yet" in at.info[0].value


# --- guide ------------------------------------------------------------------------------------
def test_guide_opens_in_the_app_with_a_section_per_method_and_indicator(app):
    # Opened through app.py's navigation, as the "Guide" link does; the entries come from the
    # registries, so a newly registered method or indicator must show up without a page edit.
    at = app("pages/guide.py")
    assert [t.value for t in at.title] == ["Guide"]
    anchors = {h.proto.anchor for h in at.header}
    assert {"darts", "collapse", "methods", "indicators", "alerts"} <= anchors
    text = "\n".join(m.value for m in at.markdown)
    entries = [(n, METHODS.get(n).label) for n in METHODS]
    entries += [(n, INDICATORS.get(n).title) for n in INDICATORS]
    assert len(entries) >= 2
    missing = [n for n, title in entries if f"**{title}** · `{n}`" not in text]
    assert not missing, f"not explained on the Guide: {missing}"
    assert "ALGORITHMS.md" not in text
