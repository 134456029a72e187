"""The CLI as a person uses it: real subprocesses, real store, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pandas as pd

from darts_engine.monitor.alerts import alert_line
from darts_engine.runs.store import RunStore
from tests.helpers import cli

TINY = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space", "nb201",
        "--init-channels", "4", "--cells", "1", "--device", "cpu", "--threads", "1"]


def test_search_prints_run_id_and_genotype_then_lists_shows_exports(home, tmp_path):
    p = cli(home, "search", *TINY, "--epochs", "2", "--algorithm", "single", "--name", "cli run")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[-2].startswith("run id: ")
    run_id = lines[-2].split(": ", 1)[1]
    assert lines[-1].startswith("|") and lines[-1].endswith("|")  # nb201 arch string
    assert "epoch 2/2" in p.stderr

    listing = cli(home, "runs")
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[1].split()[0] == run_id

    shown = cli(home, "show", run_id)
    assert shown.returncode == 0 and '"status": "completed"' in shown.stdout

    out = tmp_path / "export"
    for fmt in ("csv", "json", "parquet"):
        ex = cli(home, "export", run_id, "--format", fmt, "--out", str(out / fmt))
        assert ex.returncode == 0, ex.stderr
    em = pd.read_csv(out / "csv" / "epoch_metrics.csv")
    assert list(em["epoch"]) == [0, 1]
    assert json.loads((out / "json" / "run.json").read_text())["id"] == run_id


def test_output_for_logs_has_plain_epoch_lines_and_local_created_times(home):
    # stdout and stderr are pipes here, as under `2>&1 | tee log`: no carriage returns
    p = cli(home, "search", *TINY, "--epochs", "2", "--name", "logged", text=False)
    assert p.returncode == 0, p.stderr
    assert b"\r" not in p.stderr and b"\r" not in p.stdout
    epochs = [ln for ln in p.stderr.decode().split("\n") if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/2", "2/2"]

    # POSIX TZ "IST-5:30" is UTC+05:30 (no tz database needed): the listing uses local time
    listing = cli(home, "runs", env={"TZ": "IST-5:30"})
    assert listing.returncode == 0, listing.stderr
    created = RunStore(home).list_runs()["created_at"].iloc[0]
    ist = timezone(timedelta(hours=5, minutes=30))
    expected = datetime.fromtimestamp(created, ist).strftime("%Y-%m-%d %H:%M")
    assert listing.stdout.splitlines()[0].split()[-1] == "created_at"
    assert listing.stdout.splitlines()[1].endswith(f"logged {expected}")
    assert "e+09" not in listing.stdout


def test_bad_input_exits_2_with_the_field_and_leaves_no_run(home):
    # The real exit code of the process; every other bad-input case runs in-process
    # (tests/unit/test_cli_args.py).
    p = cli(home, "search", *TINY, "--epochs", "-5")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "epochs must be >= 1" in p.stderr
    assert "Traceback" not in p.stderr
    assert RunStore(home).list_runs().empty


def test_alerts_are_printed_as_they_fire_and_listed_by_show(home):
    # NB201's uniform start already has 3/5 of the weight on parameter-free ops: fires at once
    p = cli(home, "search", *TINY, "--epochs", "2", "--alert-pf-mass", "0.1",
            "--alert-skip-count", "0", "--no-progress")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    alerts = [ln for ln in lines if ln.startswith("alert ")]
    assert len(alerts) == 1  # fires once, when the condition becomes true
    assert alerts[0].startswith("alert epoch 1: Parameter-free mass threshold: parameter-free "
                                "mass above 0.1 (cell 0.")
    assert lines.index(alerts[0]) < len(lines) - 2  # before the run id and the genotype
    run_id = lines[-2].split(": ", 1)[1]

    shown = cli(home, "show", run_id)
    assert shown.returncode == 0
    out = shown.stdout.splitlines()
    assert "alerts: 1" in out and alerts[0] in out


def test_alert_line_counts_epochs_from_one_and_names_the_source():
    line = alert_line(11, "darts+-skip", "DARTS+: ≥ 2 skip connections: 2 skip_connect", "stop")
    assert line.startswith("alert epoch 12: DARTS+: ≥ 2 skip connections: 2 skip_connect — ")
    assert "Liang et al. 2019" in line and line.endswith("the run stops")
    assert alert_line(0, "unknown-rule", "m") == "alert epoch 1: m"


def test_ctrl_c_stops_the_run_between_steps_and_exits_130(home, capsys, monkeypatch):
    # In-process through cli.main: the first wait on the run is cut by Ctrl-C, as in a terminal.
    from darts_engine import cli as cli_module
    from darts_engine.runs.manager import RunManager
    wait, calls = RunManager.wait, []

    def interrupted_once(self, run_id, timeout=600.0):
        calls.append(run_id)
        if len(calls) == 1:
            time.sleep(1.0)  # a few steps in
            raise KeyboardInterrupt
        return wait(self, run_id, timeout)

    monkeypatch.setattr(RunManager, "wait", interrupted_once)
    code = cli_module.main(["--home", str(home), "search", *TINY, "--epochs", "200",
                            "--no-progress"])
    assert code == 130 and len(calls) == 2
    (run,) = RunStore(home).list_runs().to_dict("records")
    assert run["status"] == "stopped" and run["epochs_done"] < 200
    assert "stopping after the current step" in capsys.readouterr().err
