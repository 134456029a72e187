"""The Ray executor on a real local Ray instance (2 CPUs, no dashboard): the same runs as the
local executor, a killed worker taking only its own run, pause / stop reaching a Ray run."""

from __future__ import annotations

import os
import signal
import time

import pandas as pd
import pytest

pytest.importorskip("ray", reason='the Ray executor needs ray: pip install "ray[client]>=2.40,<3"')

from darts_engine.runs import ray_executor  # noqa: E402
from darts_engine.runs.manager import RunManager  # noqa: E402
from darts_engine.runs.store import RunStore  # noqa: E402
from darts_engine.search import CHECKPOINT_NAME  # noqa: E402
from tests.helpers import tiny  # noqa: E402

# Not marked slow: the README's test command (and CI) runs the Ray executor on a real instance.

# The rows a run's numbers make; timings and the writer's bookkeeping differ between runs.
TIMINGS = ["epoch_time", "wall_time", "step_time"]


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance for the module, as `RunManager(executor="ray")` would start it
    (the project's code shipped with the job), with 2 CPUs."""
    import ray

    started = not ray.is_initialized()
    ray_executor.connect(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def _manager(path, executor: str) -> RunManager:
    return RunManager(RunStore(path), max_concurrent=2, threads_per_run=1, executor=executor)


def _wait_until(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _tables(store: RunStore, run_id: str) -> dict[str, pd.DataFrame | tuple]:
    run = store.get_run(run_id)
    return {"run": (run["status"], run["error"], run["epochs_done"], run["genotype"]),
            "epochs": store.epoch_metrics(run_id).drop(columns=TIMINGS, errors="ignore"),
            "steps": store.step_metrics(run_id).drop(columns=TIMINGS, errors="ignore"),
            "genotypes": store.genotypes(run_id)}


def _assert_same(a: dict, b: dict) -> None:
    assert a["run"] == b["run"]
    for table in ("epochs", "steps", "genotypes"):
        pd.testing.assert_frame_equal(a[table].reset_index(drop=True),
                                      b[table].reset_index(drop=True), obj=table)


# 3 grid points x 2 seeds, as a sweep of arch_lr would launch them
GRID = [tiny(dataset="digits", epochs=2, arch_lr=lr, seed=seed, name=f"lr{lr}-s{seed}")
        for lr in (3e-4, 3e-3, 3e-2) for seed in (0, 1)]


def test_ray_runs_match_local_runs(tmp_path):
    tables = {}
    for executor in ("local", "ray"):
        m = _manager(tmp_path / executor, executor)
        try:
            ids = [m.launch(cfg) for cfg in GRID]
            for run_id in ids:
                m.wait(run_id, timeout=120)
            tables[executor] = [_tables(m.store, run_id) for run_id in ids]
            assert all(m.store.run_dir(i).joinpath(CHECKPOINT_NAME).is_file() for i in ids)
            assert m.store.check() == []
        finally:
            m.shutdown(60)
    for local, remote in zip(tables["local"], tables["ray"], strict=True):
        assert local["run"][0] == "completed" and local["run"][2] == 2
        assert len(local["steps"]) > 0 and len(local["genotypes"]) == 2
        _assert_same(local, remote)
    # the grid's points and seeds are different runs, not one run six times
    assert len({t["run"][3] for t in tables["local"]}) > 1


def test_a_killed_worker_interrupts_only_its_run_and_resumes(tmp_path):
    cfg = tiny(dataset="digits", epochs=4, data_limit=1024, name="victim")
    other_cfg = cfg.replace(seed=1, name="other")
    m = _manager(tmp_path / "ray", "ray")
    try:
        victim, other = m.launch(cfg), m.launch(other_cfg)
        _wait_until(lambda: m.store.get_run(victim)["epochs_done"] >= 1, what="an epoch")
        pid = m.ray.worker_pid(victim)
        assert pid is not None and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        m.wait(victim, timeout=60)
        run = m.store.get_run(victim)
        assert run["status"] == "interrupted", run
        assert run["error"].startswith("the Ray worker running it died"), run["error"]
        assert 1 <= run["epochs_done"] < 4
        # the checkpoint came back to the driver's run folder with the epoch
        assert m.store.run_dir(victim).joinpath(CHECKPOINT_NAME).is_file()
        m.wait(other, timeout=120)
        assert m.store.get_run(other)["status"] == "completed"

        m.resume(victim)
        m.wait(victim, timeout=120)
        resumed = _tables(m.store, victim)
        assert resumed["run"][0] == "completed" and resumed["run"][2] == 4
        assert m.store.check() == []
    finally:
        m.shutdown(60)
    # resumed from the shipped checkpoint, it ends as the same run never interrupted does
    local = _manager(tmp_path / "local", "local")
    try:
        ref = local.launch(cfg)
        local.wait(ref, timeout=120)
        expected = _tables(local.store, ref)
    finally:
        local.shutdown(60)
    assert resumed["run"][3] == expected["run"][3]
    pd.testing.assert_frame_equal(resumed["epochs"], expected["epochs"])


def test_pause_and_stop_reach_a_ray_run(tmp_path):
    m = _manager(tmp_path, "ray")
    try:
        run_id = m.launch(tiny(dataset="digits", epochs=6, data_limit=1024))
        _wait_until(lambda: m.status(run_id)["step"] > 0, what="a step")
        m.pause(run_id)
        assert m.wait_paused(run_id, timeout=30)
        held = m.status(run_id)["step"]
        time.sleep(1.0)
        assert m.status(run_id)["step"] == held  # nothing moves while paused
        assert m.store.get_run(run_id)["status"] == "paused"
        m.resume(run_id)
        _wait_until(lambda: m.status(run_id)["step"] > held, what="a step after resume")
        m.stop(run_id)
        m.wait(run_id, timeout=60)
        run = m.store.get_run(run_id)
        assert run["status"] == "stopped" and run["epochs_done"] < 6, run
        assert m.store.check() == []
        m.delete(run_id)
        assert not (m.store.home / run_id).exists() and m.store.list_runs().empty
    finally:
        m.shutdown(60)


def test_a_stop_reaches_a_run_still_waiting_for_a_ray_worker(tmp_path):
    """3 threads per run on a 2-CPU instance: Ray cannot place the actor; a stop ends the wait."""
    m = RunManager(RunStore(tmp_path), max_concurrent=1, threads_per_run=3, executor="ray")
    try:
        run_id = m.launch(tiny(dataset="digits"))
        time.sleep(1.0)
        assert m.ray.worker_pid(run_id) is None and m.is_live(run_id)
        m.stop(run_id)
        m.wait(run_id, timeout=30)
        run = m.store.get_run(run_id)
        assert (run["status"], run["epochs_done"]) == ("stopped", 0), run
        assert "before a Ray worker was free" in run["error"]
    finally:
        m.shutdown(60)


def test_a_retrain_on_ray_matches_the_local_one(tmp_path):
    from darts_engine.train.retrain import preset

    cell = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
            "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    cfg = preset("nb201", epochs=2, init_channels=4, cells_per_stage=1, threads=1)
    tables = []
    for executor in ("local", "ray"):
        m = _manager(tmp_path / executor, executor)
        try:
            run_id = m.launch_retrain(cfg, cell)
            m.wait(run_id, timeout=120)
            tables.append(_tables(m.store, run_id))
            assert type(m.result(run_id)).__name__ == "RetrainResult"
        finally:
            m.shutdown(60)
    assert tables[0]["run"][:3] == ("completed", "", 2)
    _assert_same(*tables)


def test_an_unknown_executor_names_the_field(tmp_path):
    from darts_engine.config import ConfigError

    with pytest.raises(ConfigError) as e:
        RunManager(RunStore(tmp_path), executor="slurm")
    assert e.value.field == "executor" and "'local' or 'ray'" in str(e.value)


def test_without_ray_the_error_names_executor_and_the_install(monkeypatch, tmp_path):
    import sys

    from darts_engine.config import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError) as e:
        RunManager(RunStore(tmp_path), executor="ray")
    assert e.value.field == "executor" and 'pip install "ray[client]>=2.40,<3"' in str(e.value)
