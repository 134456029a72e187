"""RunManager: background runs, a bounded number at a time; failures stay contained."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore
from tests.helpers import tiny


@pytest.fixture
def manager(home):
    m = RunManager(RunStore(home), max_concurrent=2, threads_per_run=1)
    yield m
    m.shutdown(timeout=60)
    assert m.executor.alive() == 0  # no thread left behind


def _wait_state(manager, run_id, states, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = manager.status(run_id)
        if st and st["state"] in states:
            return st
        time.sleep(0.02)
    raise AssertionError(f"{run_id} never reached {states}: {manager.status(run_id)}")


def test_launch_runs_to_completion_and_records(manager):
    run_id = manager.launch(tiny(epochs=2), name="m")
    manager.wait(run_id)
    run = manager.store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 2 and run["name"] == "m"
    assert manager.status(run_id)["state"] == "completed"


def test_queue_beyond_the_limit(home):
    m = RunManager(RunStore(home), max_concurrent=1, threads_per_run=1)
    try:
        a = m.launch(tiny(epochs=3, data_limit=512))
        b = m.launch(tiny(epochs=1))
        assert m.store.get_run(b)["status"] == "queued"
        assert m.status(b)["state"] == "queued"
        m.wait(b, timeout=120)
        assert m.store.get_run(a)["status"] == "completed"
        assert m.store.get_run(b)["status"] == "completed"
        # b only started after a finished
        assert m.store.get_run(b)["started_at"] >= m.store.get_run(a)["finished_at"] - 0.5
    finally:
        m.shutdown(60)


def test_a_failing_run_does_not_stop_its_neighbour(manager, monkeypatch):
    """One run hits NaN and becomes failed with its reason; the other finishes."""
    import darts_engine.runs.manager as runs_mod

    real_search = runs_mod.search

    def poisoned_search(cfg, *args, **kwargs):
        if cfg.name == "poisoned":
            from darts_engine import build_search

            setup = build_search(cfg)
            with __import__("torch").no_grad():
                setup.model.classifier.weight[0, 0] = math.nan
            kwargs["setup"] = setup
        return real_search(cfg, *args, **kwargs)

    monkeypatch.setattr(runs_mod, "search", poisoned_search)
    bad = manager.launch(tiny(epochs=2, name="poisoned"))
    good = manager.launch(tiny(epochs=2, name="fine"))
    manager.wait(bad)
    manager.wait(good)
    bad_run, good_run = manager.store.get_run(bad), manager.store.get_run(good)
    assert bad_run["status"] == "failed" and "loss became nan" in bad_run["error"]
    assert good_run["status"] == "completed" and good_run["epochs_done"] == 2


def test_stop_pause_resume(manager):
    run_id = manager.launch(tiny(epochs=50, data_limit=512))
    _wait_state(manager, run_id, {"running"})
    while manager.status(run_id)["step"] < 2:
        time.sleep(0.01)
    manager.pause(run_id)
    assert manager.store.get_run(run_id)["status"] == "paused"
    assert manager.wait_paused(run_id)
    step = manager.status(run_id)["step"]
    time.sleep(0.5)
    assert manager.status(run_id)["step"] == step  # held while paused
    manager.resume(run_id)
    deadline = time.monotonic() + 30
    while manager.status(run_id)["step"] == step and time.monotonic() < deadline:
        time.sleep(0.02)
    assert manager.status(run_id)["step"] > step
    manager.stop(run_id)
    manager.wait(run_id)
    assert manager.store.get_run(run_id)["status"] == "stopped"


def test_resume_a_stopped_run_from_its_checkpoint(manager):
    run_id = manager.launch(tiny(epochs=30, data_limit=256))
    while manager.store.get_run(run_id)["epochs_done"] < 2:
        time.sleep(0.02)
    manager.stop(run_id)
    manager.wait(run_id)
    done = manager.store.get_run(run_id)["epochs_done"]
    assert manager.store.get_run(run_id)["status"] == "stopped" and done >= 2
    manager.resume(run_id)
    _wait_state(manager, run_id, {"running"})
    while manager.store.get_run(run_id)["epochs_done"] <= done:
        time.sleep(0.02)
    manager.stop(run_id)
    manager.wait(run_id)
    epochs = list(manager.store.epoch_metrics(run_id)["epoch"])
    assert epochs == list(range(len(epochs)))  # continued, no gap and no repeat


def test_delete_a_running_run_stops_it_first(manager):
    run_id = manager.launch(tiny(epochs=50, data_limit=512))
    _wait_state(manager, run_id, {"running"})
    manager.delete(run_id)
    assert not manager.is_live(run_id)
    assert run_id not in set(manager.store.list_runs()["id"])
    assert not (manager.store.home / run_id).exists()


def test_bad_config_creates_no_run(manager):
    from darts_engine import ConfigError

    with pytest.raises(ConfigError, match="batch_size"):
        manager.launch(tiny(dataset="digits", batch_size=2000, data_limit=0))
    assert manager.store.list_runs().empty


def test_pair_shares_config_and_seed(manager):
    bi, single = manager.launch_pair(tiny(epochs=1, algorithm="single"), name="demo")
    manager.wait(bi)
    manager.wait(single)
    a, b = manager.store.get_run(bi), manager.store.get_run(single)
    assert a["config"]["algorithm"] == "bilevel-1st" and b["config"]["algorithm"] == "single"
    strip = {"algorithm", "arch_lr", "name"}
    assert {k: v for k, v in a["config"].items() if k not in strip} == \
        {k: v for k, v in b["config"].items() if k not in strip}


def test_shutdown_marks_live_runs_interrupted(home):
    m = RunManager(RunStore(home), max_concurrent=1, threads_per_run=1)
    a = m.launch(tiny(epochs=50, data_limit=512))
    b = m.launch(tiny(epochs=1))
    _wait_state(m, a, {"running"})
    m.shutdown(timeout=60)
    assert m.executor.alive() == 0
    assert threading.active_count() >= 1
    store = RunStore(home)
    assert store.get_run(a)["status"] == "interrupted"
    assert store.get_run(b)["status"] == "interrupted"


class HeldExecutor:
    """Takes jobs and runs none: a resumed run stays queued for as long as the test looks."""

    def submit(self, name, job):
        pass

    def join(self, timeout=None):
        pass


def test_a_resumed_run_of_a_stopped_server_is_not_taken_for_an_orphan(home):
    """After Ctrl-C and a restart the run's pid is the old server's, now dead. Once resumed, the
    Runs page's next mark_interrupted must not call it interrupted while it waits to start."""
    store = RunStore(home)
    run_id = store.create_run(tiny().to_dict(), status="interrupted")
    old_server = subprocess.Popen(["true"])
    old_server.wait()
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE runs SET pid = ? WHERE id = ?", (old_server.pid, run_id))
    con.close()
    m = RunManager(store, max_concurrent=1, executor=HeldExecutor())
    try:
        m.resume(run_id)
        assert store.mark_interrupted(live_ids=m.live_ids()) == []
        run = store.get_run(run_id)
        assert (run["status"], run["error"], run["pid"]) == ("queued", "", os.getpid())
    finally:
        m.shutdown(1)
