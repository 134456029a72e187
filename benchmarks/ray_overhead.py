"""The Ray executor's per-run overhead against the local one: the same 6-run sweep of tiny
searches (3 arch learning rates x 2 seeds, digits), the same max concurrency and threads per
run, once on each executor; the Ray one on a local instance this script starts.

    python benchmarks/ray_overhead.py [--epochs 2] [--concurrent 2] [--repeat 1]

Each executor's manager runs the sweep twice: "cold", its first (on Ray that starts one actor
per slot: a fresh worker process importing torch and darts_engine), and "warm", the same sweep
again (Ray actors reused; only events and checkpoints shipped). Prints the wall times, the
per-run overhead ((ray - local) / runs x concurrency: the extra seconds one run's slot is busy)
and the ratio ray / local of each; the one-time `ray.init` is timed apart. Asserts only that
every run completed.
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

from darts_engine.config import SearchConfig  # noqa: E402
from darts_engine.runs import ray_executor  # noqa: E402
from darts_engine.runs.manager import RunManager, warm_up  # noqa: E402
from darts_engine.runs.store import RunStore  # noqa: E402

ARCH_LRS, SEEDS = (3e-4, 3e-3, 3e-2), (0, 1)


def sweep(epochs: int) -> list[SearchConfig]:
    """tests/helpers.py `tiny` on digits: a few seconds per run on one CPU thread."""
    return [SearchConfig(space="nb201", algorithm="bilevel-1st", dataset="digits",
                         data_limit=128, batch_size=32, epochs=epochs, init_channels=4, cells=1,
                         device="cpu", seed=seed, arch_lr=lr, name=f"lr{lr}-s{seed}")
            for lr in ARCH_LRS for seed in SEEDS]


def sweep_walls(executor: str, configs: list[SearchConfig], concurrent: int
                ) -> tuple[float, float]:
    """Wall seconds of the sweep on a new manager (cold), then again on the same one (warm)."""
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        mgr = RunManager(RunStore(tmp), max_concurrent=concurrent, threads_per_run=1,
                         executor=executor)
        try:
            for _ in range(2):
                t = time.perf_counter()
                ids = [mgr.launch(cfg) for cfg in configs]
                for run_id in ids:
                    mgr.wait(run_id, timeout=3600)
                walls.append(time.perf_counter() - t)
                states = [mgr.store.get_run(r)["status"] for r in ids]
                assert states == ["completed"] * len(ids), states
        finally:
            mgr.shutdown()
            mgr.store.close()
    return walls[0], walls[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--concurrent", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    configs = sweep(args.epochs)
    print(f"cores: {os.cpu_count()}; {len(configs)} tiny searches of {args.epochs} epochs, "
          f"{args.concurrent} at a time, 1 torch thread each")
    warm_up()
    t = time.perf_counter()
    ray_executor.connect(num_cpus=args.concurrent)
    print(f"  ray.init (local instance, {args.concurrent} CPUs): {time.perf_counter() - t:.1f} s")
    sweep_walls("local", configs[:1], 1)  # first-search costs (data, allocator) out of timings
    walls: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    for _ in range(args.repeat):  # interleaved, so a busy machine affects both alike
        for executor in walls:
            walls[executor].append(sweep_walls(executor, configs, args.concurrent))
        print("  " + "   ".join(f"{ex} cold {w[-1][0]:5.1f} s, warm {w[-1][1]:5.1f} s"
                                for ex, w in walls.items()))
    slot = args.concurrent / len(configs)
    for i, which in enumerate(("cold", "warm")):
        a = statistics.median(w[i] for w in walls["local"])
        b = statistics.median(w[i] for w in walls["ray"])
        print(f"median {which}: local {a:.1f} s, ray {b:.1f} s -> ray / local = {b / a:.2f}; "
              f"overhead {(b - a) * slot:+.2f} s per run ({a * slot:.2f} s per run locally)")


if __name__ == "__main__":
    main()
