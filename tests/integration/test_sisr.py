"""The super-resolution task end to end on the trilevel space: a real search through the store,
what it records (declared metrics, the image strip, three α families with their own rows), the
discretisation gap at the end of a sparsestmax search, the FLOPs band, resume, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darts_engine import ConfigError, SearchConfig, search
from darts_engine.model.trilevel import derive_network, expected_flops
from darts_engine.runs.bundle import export_bundle, import_bundle
from darts_engine.runs.store import RunStore
from darts_engine.runs.views import load_view
from darts_engine.search import build_search
from darts_engine.train.srmetrics import psnr_y

SR = dict(task="sisr", space="trilevel-sr", dataset="sr-photos", init_channels=8, batch_size=8,
          patches_per_epoch=16, lr_patch=12, eval_crop=48, device="cpu", seed=0, threads=1,
          alpha_every=0, relaxation="sparsestmax")


def sr_config(**changes) -> SearchConfig:
    return SearchConfig(**{**SR, "epochs": 2, **changes})


def run_into(store: RunStore, cfg: SearchConfig, **kwargs):
    run_id = store.create_run(cfg.to_dict())
    rec = store.recorder(run_id)
    result = search(cfg, rec, **kwargs)
    rec.close()
    assert result.status == "completed", result.error
    return run_id, result


def test_an_sr_search_records_its_declaration_strip_and_three_alpha_families(tmp_path):
    store = RunStore(tmp_path / "home")
    run_id, result = run_into(store, sr_config())
    run = store.get_run(run_id)
    assert run["task"] == "sisr"
    assert [m["name"] for m in run["metrics"] if m["headline"]] == ["val_psnr"]
    refs = {m["name"]: m["reference_for"] for m in run["metrics"] if m.get("reference_for")}
    assert refs == {"bicubic_psnr": "val_psnr", "bicubic_ssim": "val_ssim"}
    epochs = store.epoch_metrics(run_id)
    assert len(epochs) == 2 and epochs["val_acc"].isna().all()
    assert epochs["bicubic_psnr"].nunique() == 1 and 25 < epochs["bicubic_psnr"].iloc[0] < 40
    assert (epochs["derived_gflops"] > 0).all() and (epochs["derived_params"] > 0).all()

    view = load_view(store, run_id)
    rows = {t: len(v) for t, v in view.edges.items()}
    assert rows == {"cell": 12, "kernel": 8, "network": 1}   # 4 cells × 3 slots, 4 × 2, one
    for cell, n in rows.items():
        assert view.alphas[cell].shape[1:] == (n, len(view.ops))
    assert str(view.genotype_at(len(view.alpha_index) - 1)).startswith("Trilevel(")

    (strip,) = view.image_strips
    assert strip.strips.shape == (2, 4, 48, 48, 3) and strip.scores.shape == (2, 4)
    images, scores = strip.at(1)
    assert strip.titles[-1] == "HR" and scores[-1] == pytest.approx(100.0)
    # bicubic's panel PSNR, recomputed from the stored pictures (Y channel, border = scale)
    chw = torch.tensor(images).permute(0, 3, 1, 2)
    assert float(psnr_y(chw[1:2], chw[3:4], 2)) == pytest.approx(scores[1], abs=1e-3)


def test_at_the_end_of_a_sparsestmax_search_the_derived_network_is_the_supernet(tmp_path):
    # progress reaches 1 on the last step: sparsestmax is one-hot, eval widths are the argmax,
    # so the derived network with inherited weights computes what the supernet computes.
    _, result = run_into(RunStore(tmp_path / "home"), sr_config())
    last = result.history[-1]
    assert last["derived_psnr"] == pytest.approx(last["val_psnr"], abs=1e-3)
    assert last["indicators"]["entropy.cell"] == pytest.approx(0.0, abs=1e-9)
    first = result.history[0]   # halfway: the relaxation is still a mixture on some edge
    assert first["indicators"]["entropy.cell"] > 0


def test_the_flops_weight_doubles_above_the_band_and_is_kept_across_a_resume(tmp_path):
    store = RunStore(tmp_path / "home")
    cfg = sr_config(epochs=3, flops_weight=0.5, flops_max=1e-6, flops_min=0.0)
    run_id = store.create_run(cfg.to_dict())
    folder = tmp_path / "ckpt"
    rec = store.recorder(run_id)
    seen = []

    def stop_after_two(ev):
        rec(ev)
        if getattr(ev, "kind", "") == "epoch":
            seen.append(ev)
            if len(seen) == 2:
                control.stop()

    from darts_engine.search import SearchControl
    control = SearchControl()
    first = search(cfg, stop_after_two, control, checkpoint_dir=folder)
    assert first.status == "stopped" and first.epochs_done == 2
    assert [h["flops_weight"] for h in first.history] == [1.0, 2.0]
    rest = search(cfg, rec, checkpoint_dir=folder, resume=True)
    rec.close()
    assert rest.status == "completed"
    assert [h["flops_weight"] for h in rest.history] == [1.0, 2.0, 4.0]


def test_the_alpha_step_adds_the_order_and_flops_terms_and_the_w_step_the_sandwich():
    s = build_search(sr_config(flops_weight=0.25, order_weight=2.0))
    batch = next(s.data.train.epoch(0))
    model = s.model
    want = 2.0 * model.order_loss() + 0.25 * expected_flops(
        model, model.mixing_weights(), (360, 640)) / 1e9
    got = s.ctx.alpha_terms(model, batch).detach()
    assert float(got) == pytest.approx(float(want.detach()), rel=1e-6)
    lr, hr = batch
    with torch.no_grad():
        parts = []
        for mode in ("min", "max"):
            with model.widths_as(mode):
                parts.append(torch.nn.functional.l1_loss(model(lr), hr))
        assert float(s.ctx.weight_terms(model, batch)) == pytest.approx(float(sum(parts)),
                                                                         rel=1e-6)
    off = build_search(sr_config(sandwich=False, order_weight=0.0))
    assert off.ctx.weight_terms is not None and off.ctx.weight_terms(off.model, batch) is None
    assert off.ctx.alpha_terms(off.model, batch) is None


def test_the_derived_network_of_the_recorded_genotype_runs_on_the_test_crops():
    s = build_search(sr_config())
    s.model.progress = 1.0
    net = derive_network(s.model, s.space.parse(str(s.space.derive(
        {t: a.detach().numpy() for t, a in s.model.alphas.items()}, None, "sparsestmax"))))
    lr, hr = next(iter(s.data.held_out.ordered()))
    assert net(lr).shape == hr.shape


@pytest.mark.parametrize("changes, field", [
    (dict(gap_every=1), "gap_every"),
    (dict(hessian_every=1), "hessian_every"),
    (dict(eval_crop=49), "eval_crop"),
    (dict(dataset="digits"), "dataset"),
    (dict(space="nb201"), "task"),
    (dict(sr_test="urban100"), "sr_test"),
    (dict(flops_min=2.0, flops_max=1.0), "flops_min"),
    (dict(scale=5), "scale"),
])
def test_bad_sr_settings_are_refused_naming_the_field(changes, field):
    with pytest.raises(ConfigError) as e:
        sr_config(**changes)
    assert e.value.field == field, str(e.value)


def test_a_classification_run_refuses_the_sr_space_and_data():
    with pytest.raises(ConfigError, match="serves the spaces darts") as e:
        SearchConfig(space="trilevel-sr")
    assert e.value.field == "task"
    with pytest.raises(ConfigError, match="holds LR/HR image pairs and the task 'classification' reads labelled images") as e:
        SearchConfig(dataset="sr-photos")
    assert e.value.field == "dataset"


def test_the_sr_strip_panels_have_the_psnr_of_each_against_hr(tmp_path):
    store = RunStore(tmp_path / "home")
    run_id, _ = run_into(store, sr_config(epochs=1))
    (strip,) = load_view(store, run_id).image_strips
    images, scores = strip.at(0)
    hr = images[3]
    for k in range(3):   # an independent PSNR in NumPy, Y channel, border 2
        def y(img):
            return (16 + 65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2])
        a, b = y(images[k])[2:-2, 2:-2], y(hr)[2:-2, 2:-2]
        mse = np.mean(((a - b) / 255.0) ** 2)
        assert scores[k] == pytest.approx(10 * np.log10(1 / mse), abs=1e-2)


def test_an_sr_run_round_trips_through_a_bundle_with_its_three_alpha_families(tmp_path):
    store = RunStore(tmp_path / "a")
    run_id, _ = run_into(store, sr_config(epochs=1, alpha_every=1))
    fresh = RunStore(tmp_path / "b")
    new_id = import_bundle(fresh, export_bundle(store, run_id))
    a, b = load_view(store, run_id), load_view(fresh, new_id)
    for cell in ("cell", "kernel", "network"):
        np.testing.assert_array_equal(a.alphas[cell], b.alphas[cell])
    assert a.image_strips and not b.image_strips   # bundles carry no per-epoch extras (yet)
    assert b.run["genotype"] == a.run["genotype"]
