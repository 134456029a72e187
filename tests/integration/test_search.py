"""The search loop end to end on the procedural `shapes` data, recorded in a real store."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from darts_engine import ALGORITHMS, SPACES, SearchControl, parse_genotype, search
from darts_engine.events import EpochRecord, RunFinished, RunStarted, StepRecord
from darts_engine.runs.store import RunStore
from tests.helpers import cell_spaces, tiny


@pytest.mark.parametrize("algorithm", ALGORITHMS.names())
@pytest.mark.parametrize("space", cell_spaces())   # the SR space: test_sisr.py
def test_one_epoch_search_writes_a_complete_run(home, space, algorithm):
    store = RunStore(home)
    cfg = tiny(space=space, algorithm=algorithm, alpha_every=1)
    run_id = store.create_run(cfg.to_dict(), name="t")
    rec = store.recorder(run_id)
    result = search(cfg, rec, checkpoint_dir=store.run_dir(run_id))
    rec.close()
    assert result.status == "completed", result.error
    run = store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 1
    sp = SPACES.get(space)
    assert parse_genotype(run["genotype"], ops=sp.ops) == sp.derive(result.alphas)
    em = store.epoch_metrics(run_id)
    assert list(em["epoch"]) == [0] and 0.0 <= em["val_acc"].iloc[0] <= 1.0
    steps = store.step_metrics(run_id)
    assert list(steps["step"]) == [1, 2]  # 64 train images / batch 32
    for cell in sp.cell_types:
        _, arr = store.alpha_history(run_id, cell)
        assert arr.shape == (1, sp.n_edges, len(sp.ops))
        np.testing.assert_array_equal(arr[-1], result.alphas[cell].astype(np.float32))
        _, per_step = store.alpha_history(run_id, cell, source="step")
        assert per_step.shape[0] == 2  # alpha_every=1 over 2 steps
    assert (store.run_dir(run_id) / "checkpoint.pt").is_file()


def test_same_seed_gives_identical_metrics():
    a = search(tiny(epochs=2))
    b = search(tiny(epochs=2))
    assert a.history == b.history
    for cell in a.alphas:
        np.testing.assert_array_equal(a.alphas[cell], b.alphas[cell])
    c = search(tiny(epochs=2, seed=1))
    assert c.history != a.history


def test_side_by_side_runs_share_init_and_data_order():
    """Same seed: identical weights, α init and batches; only the update rule differs."""
    import torch

    from darts_engine import build_search

    a, b = build_search(tiny(algorithm="bilevel-1st")), build_search(tiny(algorithm="single"))
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    for (xa, ya), (xb, yb) in zip(a.data.train.epoch(3), b.data.train.epoch(3)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    ra, rb = search(tiny(algorithm="bilevel-1st")), search(tiny(algorithm="single"))
    assert not np.allclose(ra.alphas["cell"], rb.alphas["cell"])


PLAIN_SCALARS = (str, int, float, bool, type(None), np.number, np.bool_)


def not_plain(value, path: str) -> list[str]:
    """Where in `value` something other than plain data sits: scalars, strings, NumPy arrays of
    numbers or strings, and lists / tuples / str-keyed dicts of those, at any depth."""
    if isinstance(value, dict):
        return [f"{path} key {k!r}" for k in value if not isinstance(k, str)] + [
            bad for k, v in value.items() for bad in not_plain(v, f"{path}[{k!r}]")]
    if isinstance(value, list | tuple):
        return [bad for i, v in enumerate(value) for bad in not_plain(v, f"{path}[{i}]")]
    if isinstance(value, np.ndarray):
        return [] if value.dtype.kind in "biufcUS" else [f"{path}: array of {value.dtype}"]
    return [] if isinstance(value, PLAIN_SCALARS) else [f"{path}: {type(value).__name__}"]


def test_plain_data_check_looks_inside_dicts_and_lists():
    assert not_plain({"a": [1, 2.0, "x"], "b": {"c": np.zeros(3)}}, "ev") == []
    assert not_plain({"a": {"b": [torch.zeros(1)]}}, "ev") == ["ev['a']['b'][0]: Tensor"]
    assert not_plain({"a": np.array([object()])}, "ev") == ["ev['a']: array of object"]


def test_events_are_plain_data():
    events = []
    search(tiny(alpha_every=1), events.append)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert {type(ev) for ev in events} >= {RunStarted, StepRecord, EpochRecord, RunFinished}
    for ev in events:
        assert not_plain(vars(ev), type(ev).__name__) == []


def test_stop_mid_epoch():
    control = SearchControl()
    steps = []

    def on_event(ev):
        if isinstance(ev, StepRecord):
            steps.append(ev.step)
            if ev.step == 2:
                control.stop()

    result = search(tiny(epochs=3, data_limit=256), on_event, control)
    assert result.status == "stopped"
    assert steps == [1, 2] and result.epochs_done == 0


def test_pause_and_resume_mid_epoch():
    control = SearchControl()
    paused_at = threading.Event()
    steps = []

    def on_event(ev):
        if isinstance(ev, StepRecord):
            steps.append(ev.step)
            if ev.step == 2:
                control.pause()
                paused_at.set()

    out = {}
    cfg = tiny(epochs=1, data_limit=256)  # 4 steps
    t = threading.Thread(target=lambda: out.update(r=search(cfg, on_event, control)))
    t.start()
    assert paused_at.wait(30)
    t.join(0.5)
    assert t.is_alive() and steps == [1, 2]  # held at the pause
    control.resume()
    t.join(30)
    assert out["r"].status == "completed" and steps == [1, 2, 3, 4]


def test_nan_loss_fails_the_run_with_a_reason():
    import math

    from darts_engine import build_search

    cfg = tiny(epochs=2)
    setup = build_search(cfg)
    with torch.no_grad():  # a corrupted weight makes every loss NaN from the first step
        setup.model.classifier.weight[0, 0] = math.nan
    events = []
    result = search(cfg, events.append, setup=setup)
    assert result.status == "failed"
    assert "loss became nan" in result.error and "epoch 0" in result.error
    assert isinstance(events[-1], RunFinished) and events[-1].status == "failed"


def test_digits_default_arch_lr_is_scaled_for_small_data():
    from darts_engine import build_search
    from darts_engine.config import SearchConfig

    s = build_search(SearchConfig(dataset="digits", space="nb201", init_channels=4, cells=1,
                                  device="cpu"))
    assert s.data.train.steps_per_epoch == 14
    assert s.cfg.arch_lr == pytest.approx(3e-4 * 391 / 14)
    assert s.ctx.a_opt.param_groups[0]["lr"] == pytest.approx(s.cfg.arch_lr)
