"""The run store (store.py) and checkpoints (checkpoint.py), on real SQLite files in tmp_path."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from darts_engine.events import (
    AlertRecord,
    EpochRecord,
    LogRecord,
    RunFinished,
    RunStarted,
    StepRecord,
)
from darts_engine.runs.recorder import Recorder
from darts_engine.runs.schema import APPLICATION_ID, DB_NAME, SCHEMA_VERSION
from darts_engine.runs.store import (
    RunNotFound,
    RunStore,
    StoreError,
    default_home,
)
from darts_engine.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[2]
CELLS = ("normal", "reduce")
OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5")
EDGES = {cell: tuple(f"e{i}" for i in range(14)) for cell in CELLS}
CONFIG = {"space": "darts", "algorithm": "bilevel-1st", "dataset": "digits", "epochs": 5,
          "cells": 0}
SPE = 3  # steps per epoch in these tests


def alphas(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {cell: rng.normal(size=(14, 8)).astype(np.float32) for cell in CELLS}


def started(start_epoch: int = 0) -> RunStarted:
    return RunStarted({**CONFIG, "cells": 8}, "cpu", 1234, SPE, OPS, EDGES,
                      start_epoch=start_epoch)


def step_record(epoch: int, step: int, with_alphas: bool = False) -> StepRecord:
    return StepRecord(epoch=epoch, step=step, train_loss=np.float32(2.0 / step),
                      val_loss=math.nan, metrics={"train_acc": 0.01 * step, "val_acc": 0.02 * step},
                      lr=0.025,
                      arch_lr=3e-4, step_time=0.1, alpha_grad_norm=np.float64(0.5),
                      weight_grad_norm=1.5, alphas=alphas(1000 + step) if with_alphas else None)


def epoch_record(epoch: int, seed: int = 0) -> EpochRecord:
    return EpochRecord(epoch=epoch, step=(epoch + 1) * SPE, train_loss=1.0 / (epoch + 1),
                       val_loss=2.0 - 0.1 * epoch, lr=0.025, epoch_time=1.5,
                       metrics={"train_acc": 0.1 * epoch,
                                "val_acc": [0.5, 0.7, 0.6, 0.65][epoch % 4]},
                       wall_time=1.5 * (epoch + 1), alphas=alphas(seed * 10_000 + epoch),
                       genotype=f"genotype-{epoch}",
                       indicators={"skip_share": 0.1 * epoch, "entropy": math.nan},
                       extras={"beta": np.arange(6, dtype=np.float64).reshape(2, 3) + epoch})


def write_run(store: RunStore, epochs: int, seed: int = 0) -> tuple[str, Recorder]:
    """A started run with `epochs` epochs of SPE steps each; α recorded every 2nd step."""
    run_id = store.create_run(CONFIG, name=f"run {seed}")
    rec = store.recorder(run_id)
    rec(started())
    for epoch in range(epochs):
        for i in range(SPE):
            step = epoch * SPE + i + 1
            rec(step_record(epoch, step, with_alphas=step % 2 == 0))
        rec(epoch_record(epoch, seed))
    return run_id, rec


def raw(store: RunStore) -> sqlite3.Connection:
    """A separate connection to inspect the file the way another process would."""
    return sqlite3.connect(store.path)


@pytest.fixture
def store(tmp_path: Path):
    s = RunStore(tmp_path / "home")
    yield s
    s.close()


# --- records round-trip -----------------------------------------------------------------------
def test_every_record_type_round_trips(store: RunStore) -> None:
    run_id = store.create_run(CONFIG, name="first try")
    assert store.get_run(run_id)["status"] == "queued"
    rec = store.recorder(run_id)
    rec(started())
    run = store.get_run(run_id)
    assert (run["status"], run["device"], run["n_params"], run["steps_per_epoch"]) == \
        ("running", "cpu", 1234, SPE)
    assert run["config"]["cells"] == 8  # replaced by the resolved config
    assert run["ops"] == list(OPS) and run["edges"] == {c: list(e) for c, e in EDGES.items()}
    assert run["pid"] == os.getpid() and run["started_at"] is not None

    for epoch in range(2):
        for i in range(SPE):
            step = epoch * SPE + i + 1
            rec(step_record(epoch, step, with_alphas=step % 2 == 0))
        rec(epoch_record(epoch))
    version = store.data_version(run_id)
    rec(LogRecord("epoch 1 done", level="warning", epoch=1))
    rec(AlertRecord(1, "darts+-skip", "skip_connect dominates", action="stop"))
    assert store.data_version(run_id) != version
    rec(RunFinished("stopped", 2, genotype="final-genotype"))

    steps = store.step_metrics(run_id)
    assert steps["step"].tolist() == list(range(1, 2 * SPE + 1))
    assert steps["epoch"].tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(steps["train_loss"], [np.float32(2.0 / s) for s in range(1, 7)])
    assert steps["val_loss"].isna().all() and steps["val_loss"].dtype == float
    assert steps["alpha_grad_norm"].tolist() == [0.5] * 6

    epochs = store.epoch_metrics(run_id)
    assert epochs["epoch"].tolist() == [0, 1] and epochs["step"].tolist() == [SPE, 2 * SPE]
    assert epochs["val_acc"].tolist() == [0.5, 0.7]
    assert epochs["ind_skip_share"].tolist() == [0.0, 0.1] and epochs["ind_entropy"].isna().all()

    for cell in CELLS:
        index, history = store.alpha_history(run_id, cell)
        assert index.to_dict("list") == {"epoch": [0, 1], "step": [SPE, 2 * SPE]}
        assert history.dtype == np.float32 and history.shape == (2, 14, 8)
        np.testing.assert_array_equal(history, [alphas(0)[cell], alphas(1)[cell]])
        index, history = store.alpha_history(run_id, cell, source="step")
        assert index["step"].tolist() == [2, 4, 6]
        np.testing.assert_array_equal(history[1], alphas(1004)[cell])
    latest = store.latest_alphas(run_id)  # step 6 has both records; the epoch's wins
    np.testing.assert_array_equal(latest["reduce"], alphas(1)["reduce"])

    index, beta = store.extras_history(run_id, "beta")
    assert index["epoch"].tolist() == [0, 1] and beta.shape == (2, 2, 3)
    np.testing.assert_array_equal(beta[1], np.arange(6).reshape(2, 3) + 1)

    logs = store.logs(run_id)
    assert logs[["level", "epoch", "message"]].values.tolist() == [["warning", 1, "epoch 1 done"]]
    alerts = store.alerts(run_id)
    assert alerts[["epoch", "rule", "action"]].values.tolist() == [[1, "darts+-skip", "stop"]]
    assert store.genotypes(run_id).to_dict("list") == {
        "epoch": [0, 1], "genotype": ["genotype-0", "genotype-1"]}

    run = store.get_run(run_id)
    assert (run["status"], run["epochs_done"], run["genotype"]) == \
        ("stopped", 2, "final-genotype")
    assert (run["best_val_acc"], run["last_val_acc"]) == (0.7, 0.7)
    assert run["finished_at"] >= run["started_at"]


def test_reads_are_copies(store: RunStore) -> None:
    run_id, _ = write_run(store, 1)
    _, history = store.alpha_history(run_id, "normal")
    history[:] = 0  # writable, and writing it changes nothing stored
    np.testing.assert_array_equal(store.alpha_history(run_id, "normal")[1][0], alphas(0)["normal"])


def test_steps_are_buffered_and_flushed_before_an_epoch(store: RunStore) -> None:
    run_id = store.create_run(CONFIG)
    rec = store.recorder(run_id)
    rec.FLUSH_S = 3600.0  # only the row count and the epoch may trigger a flush here
    rec(started())
    for step in range(1, Recorder.FLUSH_ROWS):
        rec(step_record(0, step))
    assert store.step_metrics(run_id).empty
    rec(step_record(0, Recorder.FLUSH_ROWS))
    assert len(store.step_metrics(run_id)) == Recorder.FLUSH_ROWS
    rec(step_record(0, Recorder.FLUSH_ROWS + 1))
    rec(epoch_record(0))
    assert len(store.step_metrics(run_id)) == Recorder.FLUSH_ROWS + 1
    rec(step_record(1, Recorder.FLUSH_ROWS + 2))
    rec.close()
    assert len(store.step_metrics(run_id)) == Recorder.FLUSH_ROWS + 2


def test_resume_drops_the_epochs_it_redoes(store: RunStore) -> None:
    run_id, rec = write_run(store, 3)
    rec(started(start_epoch=1))
    assert store.epoch_metrics(run_id)["epoch"].tolist() == [0]
    assert store.step_metrics(run_id)["epoch"].unique().tolist() == [0]
    assert len(store.alpha_history(run_id, "normal")[0]) == 1
    run = store.get_run(run_id)
    assert (run["epochs_done"], run["best_val_acc"], run["genotype"]) == (1, 0.5, "genotype-0")


# --- concurrency ------------------------------------------------------------------------------
def test_reader_never_sees_an_epoch_without_its_alphas(store: RunStore) -> None:
    n_epochs, problems, polls, partial = 200, [], [0], [0]
    run_id = store.create_run(CONFIG)
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            run = store.get_run(run_id)
            before = set(store.epoch_metrics(run_id)["epoch"])
            with_alphas = [set(store.alpha_history(run_id, c)[0]["epoch"]) for c in CELLS]
            with_beta = set(store.extras_history(run_id, "beta")[0]["epoch"])
            after = set(store.epoch_metrics(run_id)["epoch"])
            # Later reads see at least what earlier ones saw: before ⊆ α ⊆ after if atomic.
            if run["epochs_done"] > len(before) or not all(
                    before <= s <= after for s in (*with_alphas, with_beta)):
                problems.append((run["epochs_done"], sorted(before), sorted(after)))
            polls[0] += 1
            partial[0] += 0 < len(before) < n_epochs

    def write() -> None:
        rec = store.recorder(run_id)
        rec(started())
        for epoch in range(n_epochs):
            rec(step_record(epoch, epoch * SPE + 1, with_alphas=True))
            rec(epoch_record(epoch))
        done.set()

    reader = threading.Thread(target=read)
    reader.start()
    write()
    reader.join()
    assert problems == []
    assert partial[0] > 0, f"the reader never caught the writer mid-run ({polls[0]} polls)"
    assert len(store.epoch_metrics(run_id)) == n_epochs


def test_two_threads_write_two_runs(store: RunStore) -> None:
    other = RunStore(store.home)  # a second object on the same file shares the write lock

    def work(s: RunStore, seed: int) -> str:
        run_id, rec = write_run(s, 40, seed=seed)
        rec(RunFinished("completed", 40))
        return run_id

    with ThreadPoolExecutor(2) as pool:
        futures = {seed: pool.submit(work, s, seed) for seed, s in ((1, store), (2, other))}
    for seed, future in futures.items():
        run_id = future.result()  # re-raises what the thread raised
        assert store.get_run(run_id)["epochs_done"] == 40
        assert len(store.step_metrics(run_id)) == 40 * SPE
        _, history = store.alpha_history(run_id, "reduce")
        np.testing.assert_array_equal(history[39], alphas(seed * 10_000 + 39)["reduce"])
    other.close()


# --- the file ---------------------------------------------------------------------------------
def test_database_is_wal_and_marked_as_ours(store: RunStore) -> None:
    con = raw(store)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()
    run_id = store.create_run(CONFIG)
    assert RunStore(store.home).get_run(run_id)["config"] == CONFIG  # reopens fine


def _foreign_schema(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('keep me')")
    con.commit()
    con.close()


def _wrong_application_id(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA application_id = 1234")
    con.execute("CREATE TABLE runs (id TEXT)")
    con.commit()
    con.close()


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(5000))


def _truncated_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 20)


@pytest.mark.parametrize("make", [_foreign_schema, _wrong_application_id, _garbage,
                                  _truncated_header])
def test_a_file_that_is_not_ours_is_refused_and_left_alone(tmp_path: Path, make) -> None:
    db = tmp_path / DB_NAME
    make(db)
    before = db.read_bytes()
    with pytest.raises(StoreError) as info:
        RunStore(tmp_path)
    assert str(db) in str(info.value) and "DARTBOARD_HOME" in str(info.value)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]


def test_a_foreign_wal_database_is_not_checkpointed(tmp_path: Path) -> None:
    src, home = tmp_path / "src", tmp_path / "home"
    src.mkdir()
    home.mkdir()
    owner = sqlite3.connect(src / DB_NAME)
    owner.execute("PRAGMA journal_mode = WAL")
    owner.execute("PRAGMA wal_autocheckpoint = 0")
    owner.execute("CREATE TABLE notes (body TEXT)")
    owner.commit()
    # What an owner that crashed leaves behind: the last commits live only in the -wal file,
    # and a read-write open followed by a close would fold them into the database file.
    data = [home / DB_NAME, home / f"{DB_NAME}-wal"]
    for path in data:
        shutil.copyfile(src / path.name, path)
    owner.close()
    before = [p.read_bytes() for p in data]
    with pytest.raises(StoreError, match=str(home / DB_NAME)):
        RunStore(home)
    assert [p.read_bytes() for p in data] == before and len(before[1]) > 0


def test_an_empty_file_is_initialised(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).touch()
    run_id = RunStore(tmp_path).create_run(CONFIG)
    assert RunStore(tmp_path).get_run(run_id)["status"] == "queued"


def test_home_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        RunStore(tmp_path / "file")


def test_default_home_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARTBOARD_HOME", "/data/dartboard")
    assert default_home() == Path("/data/dartboard")
    monkeypatch.delenv("DARTBOARD_HOME")
    assert default_home() == Path("runs")


# --- runs -------------------------------------------------------------------------------------
def test_delete_removes_every_row_and_the_folder(store: RunStore) -> None:
    run_id, rec = write_run(store, 2)
    rec(LogRecord("hello"))
    rec(AlertRecord(0, "rule", "message"))
    keep, _ = write_run(store, 1, seed=1)
    (store.run_dir(run_id) / "checkpoint.pt").write_bytes(b"x")
    store.delete_run(run_id)
    assert not (store.home / run_id).exists()
    con = raw(store)
    for table in ("step_metrics", "epoch_metrics", "alphas", "extras", "logs", "alerts"):
        assert con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?",
                           (run_id,)).fetchone() == (0,), table
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    con.close()
    with pytest.raises(RunNotFound, match=run_id) as info:
        store.get_run(run_id)
    assert isinstance(info.value, KeyError)
    with pytest.raises(RunNotFound):
        rec(epoch_record(2))  # the writer learns its run is gone
    assert len(store.epoch_metrics(keep)) == 1


def test_list_runs_is_newest_first_with_fixed_columns(store: RunStore) -> None:
    finished, rec = write_run(store, 2)
    rec(RunFinished("completed", 2))
    ids = [finished] + [store.create_run({**CONFIG, "dataset": f"d{i}"}) for i in range(2)]
    runs = store.list_runs()
    assert runs.columns.tolist() == [
        "id", "name", "status", "space", "algorithm", "dataset", "epochs", "epochs_done",
        "best_val_acc", "created_at", "started_at", "finished_at", "duration_s", "error"]
    assert runs["id"].tolist() == ids[::-1]
    assert runs["dataset"].tolist() == ["d1", "d0", "digits"]
    last = runs.iloc[-1]
    assert (last["status"], last["epochs"], last["epochs_done"], last["best_val_acc"]) == \
        ("completed", 5, 2, 0.7)
    assert last["duration_s"] >= 0 and math.isnan(runs.iloc[0]["duration_s"])
    stamps = [run_id[:15] for run_id in runs["id"]]  # YYYYMMDD-HHMMSS: sorts by creation
    assert stamps == sorted(stamps, reverse=True)


def test_status_changes(store: RunStore) -> None:
    run_id = store.create_run(CONFIG)
    assert store.set_status(run_id, "running")
    assert store.get_run(run_id)["finished_at"] is None
    assert store.set_status(run_id, "failed", error="GPU ran out of memory")
    assert store.get_run(run_id)["error"] == "GPU ran out of memory"
    assert not store.set_status(run_id, "stopping")  # too late: it already finished
    assert store.get_run(run_id)["status"] == "failed"
    with pytest.raises(StoreError, match="unknown run status"):
        store.set_status(run_id, "exploded")
    with pytest.raises(RunNotFound):
        store.set_status("20990101-000000-dead", "running")
    store.rename_run(run_id, "../../etc/passwd is just a name")
    assert store.get_run(run_id)["name"] == "../../etc/passwd is just a name"


def test_run_dir_only_for_run_ids(store: RunStore) -> None:
    run_id = store.create_run(CONFIG)
    assert store.run_dir(run_id) == store.home / run_id and store.run_dir(run_id).is_dir()
    with pytest.raises(StoreError, match="not a run id"):
        store.run_dir("../outside")


@pytest.mark.parametrize("n_rows", [1, 2, 49, 50, 51, 1000])
def test_step_downsampling_caps_rows_and_keeps_the_last(store: RunStore, n_rows: int) -> None:
    run_id = store.create_run(CONFIG)
    rec = store.recorder(run_id)
    for step in range(1, n_rows + 1):
        rec(step_record(0, step))
    rec.flush()
    for max_points in (1, 2, 7, 50, 999, 1000, 5000):
        steps = store.step_metrics(run_id, max_points=max_points)["step"]
        assert len(steps) == min(n_rows, max_points) or len(steps) < max_points
        assert 0 < len(steps) <= max_points and steps.iloc[-1] == n_rows
        assert steps.diff().dropna().nunique() <= 1  # evenly strided
    with pytest.raises(ValueError, match="max_points"):
        store.step_metrics(run_id, max_points=0)


def test_mark_interrupted_finds_runs_whose_writer_is_gone(store: RunStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # exited and reaped: its pid names no process now
    runs = {name: store.create_run(CONFIG, status=status) for name, status in [
        ("dead", "running"), ("live_here", "running"), ("orphan_here", "paused"),
        ("queued_here", "queued"), ("finished", "completed"), ("other_process", "running")]}
    con = raw(store)
    for name, pid in (("dead", child.pid), ("finished", child.pid),
                      ("other_process", os.getppid())):
        con.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, runs[name]))
    con.commit()
    con.close()

    marked = store.mark_interrupted(live_ids={runs["live_here"]})
    assert sorted(marked) == sorted([runs["dead"], runs["orphan_here"], runs["queued_here"]])
    statuses = {name: store.get_run(run_id)["status"] for name, run_id in runs.items()}
    assert statuses == {"dead": "interrupted", "live_here": "running",
                        "orphan_here": "interrupted", "queued_here": "interrupted",
                        "finished": "completed", "other_process": "running"}
    dead = store.get_run(runs["dead"])
    assert str(child.pid) in dead["error"] and dead["finished_at"] is not None
    assert store.mark_interrupted(live_ids={runs["live_here"]}) == []


# --- export -----------------------------------------------------------------------------------
READERS = {"csv": pd.read_csv, "parquet": pd.read_parquet,
           "json": lambda p: pd.read_json(p, orient="records")}


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_is_readable_back(store: RunStore, tmp_path: Path, fmt: str) -> None:
    run_id, rec = write_run(store, 3)
    rec(AlertRecord(2, "darts+-skip", "too many skips"))
    rec(RunFinished("completed", 3, genotype="final"))
    out = tmp_path / "export"
    paths = store.export_run(run_id, fmt, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths) == sorted(
        ["run.json", "genotype.txt"] + [f"{t}.{fmt}" for t in (
            "epoch_metrics", "step_metrics", "alphas", "genotypes", "alerts")])
    run = json.loads((out / "run.json").read_text())
    assert run["id"] == run_id and run["config"]["cells"] == 8
    assert (out / "genotype.txt").read_text() == "final\n"

    read = READERS[fmt]
    pd.testing.assert_frame_equal(read(out / f"epoch_metrics.{fmt}"),
                                  store.epoch_metrics(run_id), check_dtype=False)
    pd.testing.assert_frame_equal(read(out / f"step_metrics.{fmt}"),
                                  store.step_metrics(run_id), check_dtype=False)
    assert read(out / f"genotypes.{fmt}")["genotype"].tolist() == ["genotype-0", "genotype-1",
                                                                   "genotype-2"]
    assert read(out / f"alerts.{fmt}")["rule"].tolist() == ["darts+-skip"]
    long = read(out / f"alphas.{fmt}")
    assert long.columns.tolist() == ["epoch", "step", "source", "cell", "edge", "op", "value"]
    one = long.query("source == 'epoch' and cell == 'normal' and epoch == 2")
    grid = one.pivot(index="edge", columns="op", values="value").to_numpy(np.float32)
    np.testing.assert_array_equal(grid, alphas(2)["normal"])


def test_export_refuses_to_leave_the_allowed_folder(store: RunStore, tmp_path: Path) -> None:
    run_id, _ = write_run(store, 1)
    root, outside = tmp_path / "exports", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    for escape in ("../elsewhere", str(outside), "link/sub", "ok/../../elsewhere"):
        with pytest.raises(StoreError, match="outside the allowed folder"):
            store.export_run(run_id, "csv", escape, allowed_root=root)
    assert list(outside.iterdir()) == []
    assert store.export_run(run_id, "csv", "ok/run", allowed_root=root)[0].parent == \
        root / "ok" / "run"
    with pytest.raises(StoreError, match="export format"):
        store.export_run(run_id, "xlsx", "ok", allowed_root=root)


# --- a writer killed mid-write ----------------------------------------------------------------
WRITER = """
import sys
import numpy as np
from darts_engine.events import EpochRecord, RunStarted, StepRecord
from darts_engine.runs.store import RunStore

cells = ("normal", "reduce")
store = RunStore(sys.argv[1])
run_id = store.create_run({"epochs": 10**6}, name="killed")
print(run_id, flush=True)
rec = store.recorder(run_id)
rec(RunStarted({}, "cpu", 1, 20, tuple("abcdefgh"), {c: tuple(map(str, range(14))) for c in cells}))
rng = np.random.default_rng(0)
for epoch in range(10**6):
    for i in range(20):
        alphas = {c: rng.normal(size=(14, 8)) for c in cells}
        rec(StepRecord(epoch, epoch * 20 + i + 1, 1.0, metrics={"train_acc": 0.5},
                       alphas=alphas))
    rec(EpochRecord(epoch, (epoch + 1) * 20, 1.0, 1.0, 0.1, 0.01, 0.01 * epoch,
                    {c: rng.normal(size=(14, 8)) for c in cells}, "g",
                    metrics={"train_acc": 0.5, "val_acc": 0.5},
                    extras={"beta": rng.normal(size=(14,))}))
"""


def test_a_killed_writer_leaves_a_sound_database(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(home)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, "the writer script failed to start"
        store = RunStore(home)
        deadline = time.monotonic() + 60
        while store.get_run(run_id)["epochs_done"] < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    con = sqlite3.connect(home / DB_NAME)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    epochs = [e for (e,) in con.execute("SELECT epoch FROM epoch_metrics ORDER BY epoch")]
    done = con.execute("SELECT epochs_done FROM runs").fetchone()[0]
    assert epochs == list(range(done)) and done >= 3
    for cell in ("normal", "reduce"):
        with_alphas = [e for (e,) in con.execute(
            "SELECT epoch FROM alphas WHERE source = 'epoch' AND cell = ? ORDER BY epoch",
            (cell,))]
        assert with_alphas == epochs
    assert [e for (e,) in con.execute("SELECT epoch FROM extras ORDER BY epoch")] == epochs
    con.close()
    assert store.mark_interrupted() == [run_id]
    store.close()


# --- checkpoints ------------------------------------------------------------------------------
class NotPlainData:
    def __init__(self) -> None:
        self.value = 1


def _search_like_state() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    alpha = torch.nn.Parameter(torch.zeros(2, 5))
    w_opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    a_opt = torch.optim.Adam([alpha], lr=3e-4, betas=(0.5, 0.999))
    loss = model(torch.randn(8, 4)).sum() + (alpha ** 2).sum()
    loss.backward()
    w_opt.step()
    a_opt.step()
    return {"version": 1, "next_epoch": 3, "wall_time": 12.5, "model": model.state_dict(),
            "w_opt": w_opt.state_dict(), "a_opt": a_opt.state_dict(),
            "torch_rng": torch.get_rng_state(), "history": [{"epoch": 0, "val_acc": 0.5}],
            "note": None, "flags": (True, "x")}


def _assert_same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def test_checkpoint_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "run" / "checkpoint.pt"
    state = _search_like_state()
    save_checkpoint(path, {"old": 1})
    save_checkpoint(path, state)  # replaces the old one
    _assert_same(load_checkpoint(path), state)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp files left


def test_checkpoint_load_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": NotPlainData()}, path)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(path)


def test_checkpoint_save_refuses_what_load_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match=r"state\['rng'\]\[1\] is a numpy\.ndarray"):
        save_checkpoint(path, {"rng": ("MT19937", np.zeros(3))})
    with pytest.raises(CheckpointError, match=r"numpy\.float64"):
        save_checkpoint(path, {"val_acc": np.float64(0.5)})
    assert not path.exists()


@pytest.mark.parametrize("content", [None, b"", b"not a checkpoint", "truncated"])
def test_missing_or_corrupt_checkpoint_is_a_checkpoint_error(tmp_path: Path, content) -> None:
    path = tmp_path / "checkpoint.pt"
    if content == "truncated":
        save_checkpoint(path, _search_like_state())
        path.write_bytes(path.read_bytes()[:200])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


# --- the run's declaration (task, metrics, artifacts) and the schema-1 migration -----------------

def test_the_declaration_round_trips(store: RunStore) -> None:
    from darts_engine.events import artifact, metric

    run_id = store.create_run(CONFIG)
    declared = (metric("neg_mse", "negative MSE", headline=True),)
    arts = (artifact("grid", "image_grid", "a grid"),)
    ev = RunStarted({**CONFIG, "cells": 8}, "cpu", 1234, SPE, OPS, EDGES, task="toy",
                    metrics=declared, artifacts=arts)
    rec = store.recorder(run_id)
    rec(ev)
    rec.close()
    run = store.get_run(run_id)
    assert (run["task"], run["metrics"], run["artifacts"]) == ("toy", list(declared), list(arts))


def test_a_schema_1_store_is_migrated_and_old_runs_get_the_default_declaration(tmp_path) -> None:
    home = tmp_path / "home"
    s = RunStore(home)
    run_id = s.create_run(CONFIG)
    rec = s.recorder(run_id)
    rec(started())
    rec(epoch_record(0))
    rec.close()
    s.close()
    con = sqlite3.connect(home / "dartboard.db")  # back to schema 1, as an old version wrote it
    con.execute("ALTER TABLE runs DROP COLUMN declaration_json")
    for table in ("step_metrics", "epoch_metrics"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN metrics_json")
    con.execute("UPDATE extras SET name = 'edge_weight_normal' WHERE run_id = ?", (run_id,))
    con.execute("DROP TABLE sweeps")  # and without schema 4's sweeps
    con.execute("DROP INDEX runs_sweep")
    for column in ("sweep_id", "sweep_point_json"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    run = RunStore(home).get_run(run_id)
    assert run["task"] == "classification"
    assert [(m["name"], m["headline"]) for m in run["metrics"]] == [("train_acc", False),
                                                                   ("val_acc", True)]
    assert [(a["name"], a["kind"], a["cell"]) for a in run["artifacts"]] == [
        ("edge_weight_normal", "edge_weights", "normal")]
    con = sqlite3.connect(home / "dartboard.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_a_schema_2_store_is_migrated_and_its_rows_keep_their_fixed_metric_columns(
        tmp_path) -> None:
    """Schema 2 had no metrics_json: its rows read back with train_acc / val_acc as before, no
    other metric column; rows recorded after the migration carry every metric by name."""
    home = tmp_path / "home"
    RunStore(home).close()
    con = sqlite3.connect(home / "dartboard.db")  # the schema 2 tables, written by hand
    for table in ("step_metrics", "epoch_metrics"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN metrics_json")
    con.execute("DROP TABLE sweeps")  # and without schema 4's sweeps
    con.execute("DROP INDEX runs_sweep")
    for column in ("sweep_id", "sweep_point_json"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.execute("INSERT INTO runs (id, name, config_json, status, created_at, updated_at) "
                "VALUES ('20260101-000000-abcd', 'old', ?, 'completed', 1.0, 2.0)",
                (json.dumps(CONFIG),))
    con.execute("INSERT INTO epoch_metrics (run_id, epoch, step, train_loss, train_acc, val_loss,"
                " val_acc, lr, epoch_time, wall_time, genotype, indicators_json) VALUES "
                "('20260101-000000-abcd', 0, 3, 1.0, 0.25, 2.0, 0.5, 0.1, 1.0, 1.0, 'g', '{}')")
    con.execute("INSERT INTO step_metrics (run_id, step, epoch, train_loss, train_acc) VALUES "
                "('20260101-000000-abcd', 1, 0, 1.5, 0.125)")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    s = RunStore(home)
    epochs = s.epoch_metrics("20260101-000000-abcd")
    assert epochs[["train_acc", "val_acc"]].values.tolist() == [[0.25, 0.5]]
    assert [c for c in epochs.columns if c.endswith("_acc") or "metric" in c] == [
        "train_acc", "val_acc"]
    assert s.step_metrics("20260101-000000-abcd")["train_acc"].tolist() == [0.125]
    run_id = s.create_run(CONFIG)
    rec = s.recorder(run_id)
    rec(started())
    rec(replace(epoch_record(0), metrics={"val_acc": 0.5, "psnr": 31.5}))
    rec.close()
    assert s.epoch_metrics(run_id)[["val_acc", "psnr"]].values.tolist() == [[0.5, 31.5]]
    s.close()
    con = sqlite3.connect(home / "dartboard.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert json.loads(con.execute("SELECT metrics_json FROM epoch_metrics WHERE run_id = ?",
                                  (run_id,)).fetchone()[0]) == {"val_acc": 0.5, "psnr": 31.5}
    con.close()


def test_metrics_beyond_the_fixed_columns_get_a_column_each_in_both_frames(tmp_path) -> None:
    s = RunStore(tmp_path)
    run_id = s.create_run(CONFIG)
    rec = s.recorder(run_id)
    rec(started())
    for step, cer in ((1, 0.75), (2, 0.5)):
        rec(replace(step_record(0, step), metrics={"cer": cer}))
    rec(replace(epoch_record(0), metrics={"cer": 0.5, "psnr": 30.0}))
    rec(replace(epoch_record(1), metrics={"cer": 0.25}))  # psnr missing: NaN
    rec.close()
    steps = s.step_metrics(run_id)
    assert steps["cer"].tolist() == [0.75, 0.5]
    assert steps["train_acc"].isna().all()  # not a metric of this run
    assert s.step_metrics(run_id, max_points=1)["cer"].tolist() == [0.5]
    epochs = s.epoch_metrics(run_id)
    assert epochs["cer"].tolist() == [0.5, 0.25]
    assert epochs["psnr"].iloc[0] == 30.0 and math.isnan(epochs["psnr"].iloc[1])
    assert "metrics_json" not in epochs.columns and "metrics_json" not in steps.columns


def test_check_reports_a_run_whose_declaration_is_not_valid_json(tmp_path) -> None:
    s = RunStore(tmp_path)
    good, bad = s.create_run(CONFIG), s.create_run(CONFIG)
    rec = s.recorder(good)
    rec(started())
    rec.close()
    assert s.check() == []
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("UPDATE runs SET declaration_json = '{\"task\": ' WHERE id = ?", (bad,))
    problems = s.check()
    assert len(problems) == 1
    assert bad in problems[0] and "declaration_json" in problems[0]


def test_declarations_give_every_runs_config_and_declaration_as_get_run_does(home):
    store = RunStore(home)
    ids = [store.create_run({"space": "nb201", "epochs": 1, "seed": seed}) for seed in (0, 1)]
    declared = store.declarations()
    assert sorted(declared) == sorted(ids)
    for run_id in ids:
        run = store.get_run(run_id)
        assert declared[run_id] == {k: run[k] for k in ("config", "task", "metrics", "artifacts")}
