"""Retraining a derived cell from scratch (train/retrain.py) on built-in data: it learns, its
test split is one the search never read, and a stopped retrain resumed equals an uninterrupted
one."""

from __future__ import annotations

import pytest
import torch

from darts_engine.search import SearchControl
from darts_engine.train.data import load_test_split, make_shapes
from darts_engine.train.retrain import preset, retrain

DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
NB201_CONV = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
              "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
TINY = {"darts-eval": dict(init_channels=4, layers=3, threads=1),
        "nb201": dict(init_channels=4, cells_per_stage=1, threads=1)}
GENOTYPE = {"darts-eval": DARTS_V2, "nb201": NB201_CONV}


@pytest.mark.parametrize("recipe", sorted(TINY))
def test_two_epoch_retrain_on_digits_beats_chance(recipe):
    events = []
    r = retrain(preset(recipe, epochs=2, **TINY[recipe]), GENOTYPE[recipe], events.append)
    assert r.status == "completed" and r.epochs_done == 2, r.error
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("epoch") == 2
    started = events[0]
    assert [m["name"] for m in started.metrics if m["headline"]] == ["test_acc"]
    assert r.history[-1]["test_acc"] > 0.25  # 10 classes: chance is 0.10


def test_stopped_after_epoch_one_and_resumed_equals_uninterrupted(tmp_path):
    # darts-eval exercises every random draw: batches, crop shifts, cutout holes, drop-path
    cfg = preset("darts-eval", epochs=3, drop_path_prob=0.3, **TINY["darts-eval"])
    full = retrain(cfg, DARTS_V2, checkpoint_dir=tmp_path / "full")
    control = SearchControl()

    def stop_after_first(event):
        if event.kind == "epoch" and event.epoch == 0:
            control.stop()

    part = retrain(cfg, DARTS_V2, stop_after_first, control, checkpoint_dir=tmp_path / "cut")
    assert (part.status, part.epochs_done) == ("stopped", 1)
    events = []
    rest = retrain(cfg, DARTS_V2, events.append, checkpoint_dir=tmp_path / "cut", resume=True)
    assert (rest.status, rest.epochs_done) == ("completed", 3)
    assert events[0].start_epoch == 1 and [e.epoch for e in events if e.kind == "epoch"] == [1, 2]
    assert rest.history == full.history
    a, b = full.model.state_dict(), rest.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_retrains_checkpoint(tmp_path):
    from darts_engine.config import ConfigError

    cfg = preset("nb201", epochs=1, **TINY["nb201"])
    retrain(cfg, NB201_CONV, checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError) as e:
        retrain(cfg.replace(lr=0.05), NB201_CONV, checkpoint_dir=tmp_path, resume=True)
    assert e.value.field == "resume"


def test_shapes_test_split_is_fresh_and_digits_test_share_is_disjoint():
    shapes = load_test_split("shapes")
    search_images = make_shapes()  # what every shapes search loads
    assert torch.equal(shapes.train.x, search_images.x)
    flat_train = search_images.x.flatten(1)
    flat_test = shapes.test.x.flatten(1)
    assert not (torch.cdist(flat_test, flat_train).min(dim=1).values < 1e-6).any()
    assert shapes.test.std == shapes.train.std  # normalised with the training statistics
    assert len(set(shapes.test.y.tolist())) == 8

    digits = load_test_split("digits")
    assert len(digits.train.y) + len(digits.test.y) == 1797 and len(digits.test.y) == 359
    rows = {tuple(r) for r in digits.train.x.flatten(1).tolist()}
    # scikit-learn's digits hold a few exact duplicate images; almost all test images are new
    assert sum(tuple(r) in rows for r in digits.test.x.flatten(1).tolist()) < 10
    assert "may have seen" in digits.note
    again = load_test_split("digits")
    assert torch.equal(again.test.x, digits.test.x)  # a fixed share


def test_pause_holds_between_steps_and_resume_finishes():
    import threading
    import time

    control, epochs = SearchControl(), []

    def pause_after_first(event):
        if event.kind == "epoch":
            epochs.append(event.epoch)
            if event.epoch == 0:
                control.pause()

    cfg = preset("nb201", epochs=2, **TINY["nb201"])
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        r=retrain(cfg, NB201_CONV, pause_after_first, control)))
    worker.start()
    assert control.wait_held(60)
    time.sleep(0.3)
    assert epochs == [0]  # held before the first step of epoch 1
    control.resume()
    worker.join(60)
    assert result["r"].status == "completed" and epochs == [0, 1]
