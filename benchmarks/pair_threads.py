"""A launched pair (bi-level + single-level) on the collapse-demo config: both at once with one
torch thread each, versus one after the other with two threads each.

    python benchmarks/pair_threads.py [--epochs 3] [--repeat 2]

This is how RunManager should split the cores between the runs of a pair (runs.py picks
cores // max_concurrent threads per run). Prints wall times and their ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine.runs.manager import RunManager, warm_up  # noqa: E402
from darts_engine.runs.store import RunStore  # noqa: E402
from darts_engine.train.presets import DEFAULT_PRESET, preset_config  # noqa: E402


def pair_wall(epochs: int, concurrent: int, threads: int) -> tuple[float, list[float]]:
    """Wall seconds for the whole pair, and each run's own search time (its last wall_time)."""
    cfg = preset_config(DEFAULT_PRESET, epochs=epochs, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        mgr = RunManager(RunStore(tmp), max_concurrent=concurrent, threads_per_run=threads)
        try:
            t = time.perf_counter()
            ids = mgr.launch_pair(cfg)
            for run_id in ids:
                mgr.wait(run_id, timeout=3600)
            wall = time.perf_counter() - t
            own = [float(mgr.store.epoch_metrics(r)["wall_time"].iloc[-1]) for r in ids]
            assert all(mgr.store.get_run(r)["status"] == "completed" for r in ids)
        finally:
            mgr.shutdown()
            mgr.store.close()
    return wall, own


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}; collapse demo, {args.epochs} epochs per run")
    warm_up()
    pair_wall(1, 2, 1)  # first-search costs (data, allocator) out of the timings
    together, apart = [], []
    for _ in range(args.repeat):  # interleaved, so a busy machine affects both alike
        wall, own = pair_wall(args.epochs, concurrent=2, threads=1)
        together.append(wall)
        print(f"  concurrent, 1 thread each:  {wall:6.1f} s  (runs {own[0]:.1f} s, "
              f"{own[1]:.1f} s)")
        wall, own = pair_wall(args.epochs, concurrent=1, threads=2)
        apart.append(wall)
        print(f"  sequential, 2 threads each: {wall:6.1f} s  (runs {own[0]:.1f} s, "
              f"{own[1]:.1f} s)")
    a, b = statistics.median(together), statistics.median(apart)
    print(f"median: concurrent {a:.1f} s, sequential {b:.1f} s -> sequential / concurrent = "
          f"{b / a:.2f}")


if __name__ == "__main__":
    main()
