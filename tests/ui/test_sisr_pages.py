"""Super-resolution on the pages: the SR preset launches from the Launch form and Live shows the
image strip (LR | bicubic | SR | HR with each panel's PSNR), the PSNR curve with bicubic as a
dashed reference line, the three α families and the derived network; Compare shows the strips of
two SR runs side by side."""

from __future__ import annotations

import numpy as np

from darts_engine import SearchConfig
from darts_engine.tasks.sisr import SR_CPU_PRESET, STRIP_PANELS
from tests.helpers import array, heatmaps, launch_from_form, plotly_figures, record

SMALL = {"epochs": 2, "patches_per_epoch": 32, "init_channels": 8, "warmup_epochs": 1,
         "lr_patch": 12, "batch_size": 8}


def images(at) -> list:
    return list(at.get("image"))


def test_the_sr_preset_launches_and_live_shows_the_pictures_and_the_psnr_curve(app, home):
    at = app()
    at.selectbox(key="launch_preset").set_value(SR_CPU_PRESET).run()
    assert at.selectbox(key="launch_task").value == "sisr"
    run_id, store, run = launch_from_form(at, home, SMALL, {}, {"device": "cpu"})
    assert run["status"] == "completed" and run["epochs_done"] == 2, run["error"]
    at.run()
    assert not at.exception
    strips = images(at)
    assert len(strips) == 1                      # one st.image call with the four panels
    captions = [img.caption for img in strips[0].proto.imgs]
    assert [c.split(" · ")[0] for c in captions] == list(STRIP_PANELS)
    assert captions[-1].endswith("reference") and all(" dB" in c for c in captions[:3])

    epochs = store.epoch_metrics(run_id)
    curves = next(f for f in plotly_figures(at)
                  if any(t.get("name") == "bicubic PSNR" for t in f["data"]))
    held = next(t for t in curves["data"] if t.get("name") == "held-out (per epoch)"
                and t.get("yaxis") == "y2")
    np.testing.assert_allclose(array(held["y"]), epochs["val_psnr"], rtol=1e-6)
    ref = next(t for t in curves["data"] if t.get("name") == "bicubic PSNR")
    assert ref["line"]["dash"] == "dash"
    np.testing.assert_allclose(array(ref["y"]), epochs["bicubic_psnr"], rtol=1e-6)
    titles = [f["layout"]["title"]["text"] for f in heatmaps(at)]
    assert any("cell" in t for t in titles) and any("kernel" in t for t in titles)
    assert any("network" in t for t in titles)
    assert any("network: depth_" in c.proto.spec for c in at.get("graphviz_chart"))


def test_compare_shows_two_sr_runs_strips_side_by_side(app, home):
    from darts_engine.runs.store import RunStore
    from darts_engine.train.presets import preset_values

    store = RunStore(home)
    base = {**preset_values(SR_CPU_PRESET), **SMALL, "epochs": 1, "device": "cpu",
            "threads": 1}
    a = record(store, SearchConfig.from_dict(base), "a")
    b = record(store, SearchConfig.from_dict({**base, "seed": 3}), "b")
    at = app()
    at.switch_page("pages/compare.py")
    at.query_params["runs"] = f"{a},{b}"
    at.run()
    assert not at.exception
    assert len(images(at)) == 2
    assert not [c.value for c in at.caption if c.value.startswith("Not drawn here")]
