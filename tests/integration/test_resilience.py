"""Runs survive: kill -9 mid-epoch then resume gives exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from darts_engine.runs.store import RunStore

CFG = ["--dataset", "shapes", "--data-limit", "512", "--batch-size", "32", "--space", "nb201",
       "--init-channels", "4", "--cells", "1", "--device", "cpu", "--threads", "1",
       "--epochs", "4", "--algorithm", "bilevel-1st", "--seed", "3", "--no-progress"]
COMPARED = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "genotype"]


def _cli(home, *args):
    return [sys.executable, "-m", "darts_engine", "--home", str(home), *args]


def _final(store: RunStore, run_id: str):
    run = store.get_run(run_id)
    alphas = store.latest_alphas(run_id)
    return run, alphas, store.epoch_metrics(run_id)[COMPARED]


def test_kill_9_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    ref = subprocess.run(_cli(ref_home, "search", *CFG), capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stderr
    ref_id = ref.stdout.split("run id: ")[1].split()[0]

    proc = subprocess.Popen(_cli(home, "search", *CFG), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    store = RunStore(home)
    deadline = time.monotonic() + 120
    run_id = None
    try:  # wait until epoch 1 is committed and epoch 2 is under way, then kill -9
        while time.monotonic() < deadline:
            runs = store.list_runs()
            if not runs.empty:
                run_id = runs["id"].iloc[0]
                steps = store.step_metrics(run_id)
                if store.get_run(run_id)["epochs_done"] >= 1 and len(steps) and \
                        steps["step"].max() > 16:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert run_id is not None
    killed = store.get_run(run_id)
    assert killed["status"] == "running" and 1 <= killed["epochs_done"] < 4

    res = subprocess.run(_cli(home, "resume", run_id, "--no-progress"), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-2] == f"run id: {run_id}"
    assert res.stdout.strip().splitlines()[-1] == ref.stdout.strip().splitlines()[-1]

    run_a, alphas_a, em_a = _final(RunStore(ref_home), ref_id)
    run_b, alphas_b, em_b = _final(RunStore(home), run_id)
    assert run_b["status"] == "completed" and run_b["genotype"] == run_a["genotype"]
    for cell in alphas_a:
        np.testing.assert_array_equal(alphas_a[cell], alphas_b[cell])
    pd.testing.assert_frame_equal(em_a.reset_index(drop=True), em_b.reset_index(drop=True))
    assert RunStore(home)._con().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_resume_refuses_completed_and_unknown_runs(tmp_path):
    home = tmp_path / "h"
    args = list(CFG)
    args[args.index("--epochs") + 1] = "1"  # the same config, one epoch
    done = subprocess.run(_cli(home, "search", *args), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("run id: ")[1].split()[0]
    again = subprocess.run(_cli(home, "resume", run_id), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 2 and "completed" in again.stderr
    assert "Traceback" not in again.stderr
    unknown = subprocess.run(_cli(home, "resume", "20990101-000000-beef"), capture_output=True,
                             text=True, timeout=120)
    assert unknown.returncode == 2 and "no run" in unknown.stderr
