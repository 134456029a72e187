"""Sweeps on the local executor (runs/sweep.py through RunManager), the store's sweep tables
(deletion, integrity check, the schema 3 -> 4 migration) and the CLI's `sweep`."""

from __future__ import annotations

import json
import sqlite3
import time

import pandas as pd
import pytest
import torch

from darts_engine.cli import main
from darts_engine.runs.bundle import export_bundle, import_bundle
from darts_engine.runs.manager import RunManager
from darts_engine.runs.schema import SCHEMA_VERSION
from darts_engine.runs.states import names
from darts_engine.runs.store import RunStore, StoreError
from darts_engine.runs.sweep import SweepSpec, delete_sweep, expand, launch_sweep, sweep_progress
from tests.helpers import tiny

# tiny-style searches on digits: 2 epochs, 4 steps each
BASE = tiny(dataset="digits", data_limit=128, epochs=2).to_dict()
ARCH_LRS = [3e-4, 1e-3, 3e-3]
SEEDS = [0, 1]
TIMING = ["epoch_time", "wall_time"]  # the only per-epoch columns that may differ


def epochs(store: RunStore, run_id: str) -> pd.DataFrame:
    return store.epoch_metrics(run_id).drop(columns=TIMING)


def test_a_3_point_2_seed_sweep_runs_6_tagged_runs_identical_to_one_by_one(tmp_path):
    spec = SweepSpec(base=BASE, grid={"arch_lr": [str(v) for v in ARCH_LRS]}, seeds=SEEDS)
    store = RunStore(tmp_path / "sweep")
    mgr = RunManager(store, max_concurrent=2, threads_per_run=1)
    try:
        sweep_id = launch_sweep(mgr, spec, name="lr study")
        table = store.sweep_runs(sweep_id)
        assert len(table) == 6
        for run_id in table["id"]:
            mgr.wait(run_id, timeout=120)
    finally:
        mgr.shutdown()

    table = store.sweep_runs(sweep_id)
    want = [({"arch_lr": lr}, seed) for lr in ARCH_LRS for seed in SEEDS]  # grid, then seed
    assert list(zip(table["point"], table["seed"], strict=True)) == want
    assert list(table["status"]) == ["completed"] * 6 and list(table["epochs_done"]) == [2] * 6
    for row in table.itertuples():
        run = store.get_run(row.id)
        assert run["config"]["arch_lr"] == row.point["arch_lr"]
        assert run["config"]["seed"] == row.seed
        assert store.sweep_of(row.id) == {"sweep_id": sweep_id, "point": row.point}
        assert row.name == f"lr study · arch_lr={row.point['arch_lr']:g} · seed {row.seed}"
        last = store.epoch_metrics(row.id).iloc[-1]
        assert row.headline == "val_acc" and row.headline_value == pytest.approx(last["val_acc"])
    # ordinary runs: in the listing, and a bundle of one imports as a run of no sweep
    assert set(table["id"]) <= set(store.list_runs()["id"])
    other = RunStore(tmp_path / "other")
    imported = import_bundle(other, export_bundle(store, table["id"][0]))
    assert other.sweep_of(imported) is None
    assert epochs(other, imported).equals(epochs(store, table["id"][0]))

    progress = sweep_progress(store, sweep_id)
    assert list(progress["arch_lr"]) == ARCH_LRS
    assert list(progress["completed"]) == [2, 2, 2] and list(progress["runs"]) == [2, 2, 2]
    assert (progress[[s for s in names() if s != "completed"]] == 0).all().all()
    sweeps = store.list_sweeps()
    assert list(sweeps["id"]) == [sweep_id] and list(sweeps["runs"]) == [6]
    assert sweeps["name"][0] == "lr study"
    assert SweepSpec.from_dict(sweeps["spec"][0]).grid == {"arch_lr": ARCH_LRS}  # typed
    assert store.check() == []

    # the same configs launched one by one, with the same thread count, in another store
    alone = RunStore(tmp_path / "alone")
    mgr = RunManager(alone, max_concurrent=1, threads_per_run=1)
    try:
        for run, row in zip(expand(spec), table.itertuples(), strict=True):
            run_id = mgr.launch(run.config)
            mgr.wait(run_id, timeout=120)
            assert alone.get_run(run_id)["status"] == "completed"
            assert epochs(alone, run_id).equals(epochs(store, row.id)), row.point
            assert alone.genotypes(run_id).equals(store.genotypes(row.id))
            assert alone.get_run(run_id)["genotype"] == store.get_run(row.id)["genotype"]
    finally:
        mgr.shutdown()
    assert alone.check() == []


def test_the_cli_runs_a_sweep_and_prints_one_line_per_run(capsys, home):
    args = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space",
            "nb201", "--init-channels", "4", "--cells", "1", "--device", "cpu", "--epochs", "1"]
    code = main(["--home", str(home), "sweep", *args, "--grid", "arch_weight_decay=0,1e-3",
                 "--seeds", "3", "--name", "wd", "--max-concurrent", "1", "--no-progress"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    store = RunStore(home)
    (sweep_id,) = store.list_sweeps()["id"]
    assert out[0] == f"sweep {sweep_id}: 2 runs (2 points × 1 seeds), 1 at a time"
    table = store.sweep_runs(sweep_id)
    for line, (i, row) in zip(out[1:], enumerate(table.itertuples()), strict=True):
        assert line.startswith(f"{i + 1}/2  {row.id}  completed")
        assert f"arch_weight_decay={row.point['arch_weight_decay']:g}  seed 3  val_acc" in line
    assert list(table["seed"]) == [3, 3] and store.check() == []


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="needs cuda:7 to be missing")
def test_a_failed_run_exits_1_and_the_rest_of_the_sweep_goes_on(capsys, home):
    """cuda:7 passes the config's checks and fails when its run starts on a smaller machine."""
    args = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space",
            "nb201", "--init-channels", "4", "--cells", "1", "--epochs", "1", "--no-progress"]
    code = main(["--home", str(home), "sweep", *args, "--grid", "device=cuda:7,cpu",
                 "--max-concurrent", "1"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1, out
    store = RunStore(home)
    (sweep_id,) = store.list_sweeps()["id"]
    table = store.sweep_runs(sweep_id)
    assert list(table["status"]) == ["failed", "completed"]
    assert "  failed      device=cuda:7  seed 2" in out[1] and "completed" in out[2]
    progress = sweep_progress(store, sweep_id)
    assert progress[["failed", "completed"]].values.tolist() == [[1, 0], [0, 1]]


def test_ctrl_c_stops_every_run_of_the_sweep_and_exits_130(capsys, home, monkeypatch):
    # In-process through cli.main: the first look at the runs is cut by Ctrl-C, as in a terminal.
    is_live, calls = RunManager.is_live, []

    def interrupted_once(self, run_id):
        calls.append(run_id)
        if len(calls) == 1:
            time.sleep(1.0)  # the first run a few steps in, the second still queued
            raise KeyboardInterrupt
        return is_live(self, run_id)

    monkeypatch.setattr(RunManager, "is_live", interrupted_once)
    args = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space",
            "nb201", "--init-channels", "4", "--cells", "1", "--device", "cpu", "--epochs", "200"]
    code = main(["--home", str(home), "sweep", *args, "--grid", "arch_lr=1e-3,3e-3",
                 "--max-concurrent", "1"])
    captured = capsys.readouterr()
    assert code == 130
    table = RunStore(home).sweep_runs(RunStore(home).list_sweeps()["id"][0])
    assert list(table["status"]) == ["stopped", "stopped"]
    assert table["epochs_done"][0] < 200 and table["epochs_done"][1] == 0
    assert "stopping the sweep's runs" in captured.err
    assert sum(" stopped " in line for line in captured.out.splitlines()) == 2


# --- the store's sweep rows, filled by hand (no search) ------------------------------------------
def test_deleting_runs_and_sweeps(tmp_path):
    store = RunStore(tmp_path)
    sweep_id = store.create_sweep({"grid": [["lr", [0.1, 0.2]]]}, name="s")
    a = store.create_run({"seed": 0}, status="completed", sweep_id=sweep_id,
                         sweep_point={"lr": 0.1})
    b = store.create_run({"seed": 0}, status="completed", sweep_id=sweep_id,
                         sweep_point={"lr": 0.2})
    store.run_dir(b)
    store.delete_run(a)  # the sweep stays while it has runs ...
    assert list(store.sweep_runs(sweep_id)["id"]) == [b]
    store.delete_run(b)  # ... and goes with its last one
    assert store.list_sweeps().empty and not (tmp_path / b).exists()
    with pytest.raises(KeyError, match="no sweep"):
        store.sweep_runs(sweep_id)

    sweep_id = store.create_sweep({"grid": []})
    done = store.create_run({}, status="completed", sweep_id=sweep_id, sweep_point={"lr": 0.1})
    live = store.create_run({}, status="running", sweep_id=sweep_id, sweep_point={"lr": 0.2})
    alone = store.create_run({}, status="completed")
    with pytest.raises(StoreError, match=f"active runs \\({live}\\); stop them first"):
        store.delete_sweep(sweep_id)
    store.set_status(live, "stopped")
    store.delete_sweep(sweep_id)
    assert list(store.list_runs()["id"]) == [alone] and store.list_sweeps().empty
    assert done not in set(store.list_runs()["id"])


def test_delete_sweep_through_the_manager_stops_queued_runs_first(tmp_path):
    store = RunStore(tmp_path)
    mgr = RunManager(store, max_concurrent=1, threads_per_run=1)
    try:
        spec = SweepSpec(base=tiny(epochs=50).to_dict(), grid={"arch_lr": ["1e-3", "3e-3"]},
                         seeds=[0])
        sweep_id = launch_sweep(mgr, spec)
        delete_sweep(mgr, sweep_id)
    finally:
        mgr.shutdown()
    assert store.list_runs().empty and store.list_sweeps().empty and store.check() == []


def test_a_create_run_with_an_unknown_sweep_or_half_a_tag_is_refused(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(KeyError, match="no sweep 'sweep-x'"):
        store.create_run({}, sweep_id="sweep-x", sweep_point={})
    with pytest.raises(StoreError, match="both its sweep_id and its sweep_point"):
        store.create_run({}, sweep_id=store.create_sweep({}))
    assert store.list_runs().empty


def test_the_integrity_check_finds_broken_sweep_rows(tmp_path):
    store = RunStore(tmp_path)
    sweep_id = store.create_sweep({"grid": []})
    run_id = store.create_run({}, sweep_id=sweep_id, sweep_point={"lr": 0.1})
    assert store.check() == []
    con = sqlite3.connect(tmp_path / "dartboard.db")
    con.execute("UPDATE runs SET sweep_point_json = 'not json' WHERE id = ?", (run_id,))
    con.execute("INSERT INTO sweeps VALUES ('sweep-bad', '', 1.0, '[1]')")
    con.execute("INSERT INTO runs (id, name, config_json, status, created_at, updated_at, "
                "sweep_id, sweep_point_json) VALUES ('20260101-000000-abcd', '', '{}', "
                "'completed', 1.0, 1.0, 'sweep-gone', '{}')")
    con.commit()
    con.close()
    assert store.check() == [
        "sweep sweep-bad: spec_json is not valid JSON (a JSON object); delete the sweep",
        "run 20260101-000000-abcd: tagged with sweep 'sweep-gone', which is not in the store; "
        "delete the run",
        f"run {run_id}: sweep_point_json is not valid JSON (a JSON object); delete the run"]


def test_a_schema_3_store_is_migrated_to_sweeps(tmp_path):
    home = tmp_path / "home"
    RunStore(home).close()
    con = sqlite3.connect(home / "dartboard.db")  # the schema 3 tables, as version 3 wrote them
    con.execute("DROP TABLE sweeps")
    con.execute("DROP INDEX runs_sweep")
    for column in ("sweep_id", "sweep_point_json"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.execute("INSERT INTO runs (id, name, config_json, status, created_at, updated_at) "
                "VALUES ('20260101-000000-abcd', 'old', ?, 'completed', 1.0, 2.0)",
                (json.dumps(BASE),))
    con.execute("PRAGMA user_version = 3")
    con.commit()
    con.close()
    store = RunStore(home)
    assert store.sweep_of("20260101-000000-abcd") is None
    assert store.get_run("20260101-000000-abcd")["name"] == "old"
    assert store.list_sweeps().empty
    sweep_id = store.create_sweep({"grid": [["lr", [0.1]]]})
    run_id = store.create_run(BASE, sweep_id=sweep_id, sweep_point={"lr": 0.1})
    assert list(store.sweep_runs(sweep_id)["id"]) == [run_id] and store.check() == []
    store.close()
    con = sqlite3.connect(home / "dartboard.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    con.close()
