"""Soak: N concurrent small searches plus polling readers for M minutes (not a CI test).

    python benchmarks/soak.py --runs 4 --minutes 10 --readers 3

Runs are relaunched as they finish until the time is up. At the end it prints, per run and in
total, the step / epoch / alpha rows written against those expected from the runs' own
progress, failed runs, the readers' worst and median latency for a dashboard-style poll, and the
process's memory (RSS) at start, after the first minute and at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine import SearchConfig  # noqa: E402
from darts_engine.runs.manager import RunManager  # noqa: E402
from darts_engine.runs.store import RunStore  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reader(store: RunStore, stop: threading.Event, latencies: list[float]) -> None:
    """Poll like the live page: runs table, then metrics and α of the newest run."""
    while not stop.is_set():
        t0 = time.perf_counter()
        runs = store.list_runs()
        if not runs.empty:
            run_id = runs["id"].iloc[0]
            store.data_version(run_id)
            store.epoch_metrics(run_id)
            store.step_metrics(run_id, max_points=500)
            store.alpha_history(run_id, "cell")
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--readers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--home", default=None)
    args = p.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="dartboard-soak-"))
    store = RunStore(home)
    manager = RunManager(store, max_concurrent=args.runs, threads_per_run=1)
    cfg = SearchConfig(space="nb201", dataset="shapes", data_limit=512, batch_size=32,
                       init_channels=4, cells=1, epochs=args.epochs, alpha_every=2,
                       device="cpu", algorithm="bilevel-1st")
    stop = threading.Event()
    latencies: list[float] = []
    readers = [threading.Thread(target=reader, args=(RunStore(home), stop, latencies))
               for _ in range(args.readers)]
    for t in readers:
        t.start()
    mem = {"start": rss_mb()}
    launched: list[str] = []
    t_end = time.monotonic() + 60 * args.minutes
    seed = 0
    while time.monotonic() < t_end:
        live = manager.live_ids()
        while len(live) < args.runs:
            algo = ("bilevel-1st", "single", "bilevel-2nd")[seed % 3]
            launched.append(manager.launch(cfg.replace(seed=seed, algorithm=algo)))
            seed += 1
            live = manager.live_ids()
        if "1min" not in mem and time.monotonic() > t_end - 60 * args.minutes + 60:
            mem["1min"] = rss_mb()
        time.sleep(0.5)
    manager.shutdown(timeout=120)
    stop.set()
    for t in readers:
        t.join()
    mem["end"] = rss_mb()

    written = expected = failed = 0
    for run_id in launched:
        run = store.get_run(run_id)
        if run["status"] == "failed":
            failed += 1
            print(f"FAILED {run_id}: {run['error']}")
        steps = store.step_metrics(run_id)
        epochs = store.epoch_metrics(run_id)
        idx, _ = store.alpha_history(run_id, "cell")
        spe = run["steps_per_epoch"] or 0
        done = run["epochs_done"]
        # every epoch's steps are committed with the epoch; a stopped run may add a partial one
        expected += 2 * done + done * spe
        written += len(epochs) + len(idx) + min(len(steps), done * spe)
    missing = expected - written
    lat = sorted(latencies)
    print(f"runs launched {len(launched)}, failed {failed}")
    print(f"rows written {written} / expected {expected} (missing {missing})")
    print(f"reader polls {len(lat)}: median {1e3 * statistics.median(lat):.1f} ms, "
          f"max {1e3 * lat[-1]:.1f} ms")
    print("memory RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()))


if __name__ == "__main__":
    main()
