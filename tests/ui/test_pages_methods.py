"""Every registered method (and the sparsemax relaxation) through the dashboard: launched from
the form, watched on the live page (PC-DARTS' edge weights, LFR-DARTS' stages), compared with
plain DARTS of the same seed. Real searches on a temporary store, as in test_pages.py."""

from __future__ import annotations

import ast
import re
import shutil

import numpy as np
import pytest

from darts_engine import METHODS, SPACES, SearchConfig
from darts_engine.methods.lfr import stage_genotypes
from darts_engine.runs.paths import data_root
from darts_engine.runs.store import RunStore
from darts_engine.train.presets import preset_values
from darts_engine.viz.palette import EDGE_WEIGHT_LABEL
from tests.helpers import array, heatmaps, launch_from_form, record, tiny

PRESET = "Quick look (seconds)"
# The smallest run the form makes in a second: NB201, 1 cell per stage, C=4 (K=4 divides it).
FORM = {"epochs": 2, "data_limit": 64, "batch_size": 16, "init_channels": 4, "lfr_stages": 2}
CASES = [(m, "softmax") for m in METHODS.names()] + [("darts", "sparsemax")]


def strips(at) -> list[dict]:
    """Heatmaps that carry PC-DARTS' edge-weight strip (a second, one-column trace)."""
    return [f for f in heatmaps(at) if len(f["data"]) == 2]


def dags(at) -> list[str]:
    return [c.proto.spec for c in at.get("graphviz_chart")]


@pytest.fixture(scope="module")
def plain_store(tmp_path_factory):
    """A plain-DARTS run with the form's settings and seed, recorded once for every case."""
    home = tmp_path_factory.mktemp("plain") / "runs"
    store = RunStore(home)
    cfg = SearchConfig.from_dict({
        **preset_values(PRESET), **FORM, "device": "cpu", "name": "plain DARTS",
        "data_root": str(data_root())})  # as the form
    run_id = record(store, cfg, "plain DARTS")
    store.close()
    return home, run_id


@pytest.mark.parametrize("method, relaxation", CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_launch_watch_and_compare_every_method(app, home, plain_store, method, relaxation):
    shutil.copytree(plain_store[0], home)
    plain = plain_store[1]
    at = app()
    at.selectbox(key="launch_preset").set_value(PRESET).run()
    run_id, store, run = launch_from_form(
        at, home, FORM, {"method": method, "relaxation": relaxation},
        {"device": "cpu", "name": f"{method} · {relaxation}"})
    assert run["status"] == "completed" and run["epochs_done"] == 2, run["error"]
    assert (run["config"]["method"], run["config"]["relaxation"]) == (method, relaxation)

    # Live: PC-DARTS' edge weights beside the heatmap and as edge widths; LFR-DARTS' stages.
    at.run()
    assert not at.exception and at.selectbox(key="live_run").value == run_id
    titles = [h.value for h in at.subheader]
    if method == "pc-darts":
        (fig,) = strips(at)
        _, latest = store.extras_history(run_id, "edge_weight_cell")
        np.testing.assert_allclose(array(fig["data"][1]["z"]).reshape(-1), latest[-1],
                                   rtol=1e-6)
        assert "softmax(β)" in dags(at)[0]
    else:
        assert not strips(at) and not any("softmax(β)" in d for d in dags(at))
    lfr_title = f"Cells per depth · {METHODS.get('lfr-darts').label}"
    if method == "lfr-darts":
        assert lfr_title in titles and "LFR-DARTS (approximation)" in lfr_title
        assert any("stage 2 of 2" in m.value for m in at.markdown)
        assert len(dags(at)) == 1 + 2  # the derived cell, then one per stage
        assert run["genotype"] in [c.value for c in at.code]  # the last stage is the result
    else:
        assert lfr_title not in titles

    # Compare with plain DARTS of the same seed: both runs in every part of the page.
    at = app("pages/compare.py", runs=f"{run_id},{plain}")
    assert at.multiselect(key="compare_runs").value == [run_id, plain]
    labels = [f"{method} · {relaxation}", "plain DARTS"]
    table = at.dataframe[-1].value
    assert list(table.columns) == labels
    differs = {i.removeprefix("config · ") for i in table.index if i.startswith("config · ")}
    assert differs == (({"method"} if method != "darts" else set())
                       | ({"relaxation"} if relaxation != "softmax" else set()))
    diff = at.dataframe[-2].value
    assert labels[0] in diff.columns and labels[1] in diff.columns and len(diff)
    assert len(heatmaps(at)) == 2 and any(h.value.startswith("Genotype diff") for h in
                                          at.subheader)
    # PC-DARTS' edge weights on compare too: the strip and the widths, for its run only.
    assert len(strips(at)) == (method == "pc-darts")
    assert sum("softmax(β)" in d for d in dags(at)) == (method == "pc-darts")


def test_live_pc_darts_edge_weights_follow_the_scrubber_on_the_darts_space(app, home):
    store = RunStore(home)
    run_id = record(store, tiny(space="darts", method="pc-darts", pc_k=2, epochs=2,
                                alpha_every=1, data_limit=64, batch_size=16), "pc")
    at = app("pages/live.py", run=run_id)
    figs = strips(at)
    assert [f["layout"]["title"]["text"] for f in figs] == ["normal cell", "reduce cell"]
    edge_weights = {c: store.extras_history(run_id, f"edge_weight_{c}")[1]
                    for c in ("normal", "reduce")}
    for fig, cell in zip(figs, ("normal", "reduce"), strict=True):
        strip = fig["data"][1]
        assert strip["y"] == list(SPACES.get("darts").edge_labels)
        np.testing.assert_allclose(array(strip["z"]).reshape(-1), edge_weights[cell][-1],
                                   rtol=1e-6)
    assert any(EDGE_WEIGHT_LABEL in c.value for c in at.caption)
    normal_dag = dags(at)[0]
    assert normal_dag.count("softmax(β)") == 8  # every kept edge's tooltip names its weight

    # Scrubbed into epoch 2: β as of the end of epoch 1. Into epoch 1: none recorded yet.
    at.checkbox(key=f"live_follow_{run_id}").uncheck().run()
    index, _ = store.alpha_history(run_id, "normal", source="step")
    step_in_epoch_2 = int(index.loc[index["epoch"] == 1, "step"].iloc[0])
    at.slider(key=f"live_scrub_{run_id}").set_value(step_in_epoch_2).run()
    np.testing.assert_allclose(array(strips(at)[0]["data"][1]["z"]).reshape(-1),
                               edge_weights["normal"][0], rtol=1e-6)
    at.slider(key=f"live_scrub_{run_id}").set_value(0).run()
    assert not strips(at) and len(heatmaps(at)) == 2
    assert any("appear when the first epoch ends" in c.value for c in at.caption)


def test_live_lfr_darts_shows_every_stage_so_far(app, home):
    store = RunStore(home)
    cfg = tiny(space="darts", method="lfr-darts", lfr_stages=3, epochs=3, data_limit=64,
               batch_size=16)
    run_id = record(store, cfg, "lfr")
    at = app("pages/live.py", run=run_id)
    assert "Cells per depth · LFR-DARTS (approximation)" in [h.value for h in at.subheader]
    assert any("stage 3 of 3" in m.value for m in at.markdown)
    states = [m.value for m in at.markdown if m.value.startswith("**Stage")]
    assert states == ["**Stage 1** · frozen", "**Stage 2** · frozen", "**Stage 3** · final"]
    space = SPACES.get("darts")
    cells = {c: store.extras_history(run_id, f"lfr_cells_{c}")[1][-1] for c in space.cell_types}
    per_stage = stage_genotypes(space.ops, space.edge_labels, cells)  # the engine's reading
    stage_dags = [d for d in dags(at) if "stage " in d]
    assert len(stage_dags) == sum(len(s) for s in per_stage)  # one DAG per cell type and stage
    texts = [c.value for c in at.code if re.match(r"(normal|reduce)=\[", c.value)]
    assert len(texts) == len(per_stage) == 3
    for text, stage in zip(texts, per_stage, strict=True):
        shown = {cell: ast.literal_eval(pairs)
                 for cell, pairs in re.findall(r"(\w+)=(\[[^\]]*\])", text)}
        assert set(shown) == set(stage)  # only the cell types at that depth
        for cell, kept in stage.items():
            assert sorted(op for op, _ in shown[cell]) == sorted(op for _, op in kept)


def test_s1_heatmaps_leave_the_ops_an_edge_lacks_empty(app, home):
    """RobustDARTS S1 gives each edge two ops: live and compare draw the other six as blanks."""
    store = RunStore(home)
    ids = [record(store, tiny(space="s1", epochs=1, init_channels=4, data_limit=64,
                              batch_size=16, algorithm=a), a) for a in ("bilevel-1st", "single")]
    for at, n_runs in ((app("pages/live.py", run=ids[0]), 1),
                       (app("pages/compare.py", runs=",".join(ids)), 2)):
        assert not at.exception
        figs = heatmaps(at)
        assert len(figs) == 2 * n_runs  # normal and reduce of each run
        for fig, cell in zip(figs, ("normal", "reduce") * n_runs, strict=True):
            mask = SPACES.get("s1").op_mask(cell)
            z = array(fig["data"][0]["z"]).astype(float)
            text = np.array(fig["data"][0]["text"])
            assert np.isnan(z[~mask]).all() and (text[~mask] == "").all()
            assert np.isfinite(z[mask]).all()
            np.testing.assert_allclose(np.nansum(z, axis=1), 1.0, rtol=1e-5)  # two ops each
