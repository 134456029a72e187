"""Server-side time of the dashboard's pages on long runs, and time from Start to first point.

    python benchmarks/dashboard_refresh.py [--epochs 200] [--repeat 10]

1. Fills a temporary store with 4 DARTS-space runs of `--epochs` epochs each, written through
   the store's recorder like a real search: 50 steps per epoch, α (2 cells × 14 edges × 8 ops)
   every 10 steps and at every epoch end, a genotype per epoch.
2. Times one live-page run and one 4-run compare-page run with Streamlit's AppTest (the page
   script, figure building and serialisation to protobuf/JSON, i.e. everything the server does
   for a refresh): "cold" right after new rows (the run's data is reloaded and every figure
   rebuilt) and "warm" (nothing changed); wall time and process CPU time. A browser refresh
   reruns only the live fragment, and a real server compiles the page script once, while
   AppTest recompiles it every run: the full-page numbers are an upper bound.
3. Launches the collapse demo through a RunManager and reports seconds from launch() to the
   first step row in the store (what the live page plots first): once as the very first
   search of a process, once after runs.warm_up() as the dashboard does at start-up.

Numbers are printed, never asserted. Targets (issue 3): live < 150 ms, compare(4) < 400 ms,
Start -> first point < 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from darts_engine import SPACES, SearchConfig  # noqa: E402
from darts_engine.events import EpochRecord, RunFinished, RunStarted, StepRecord  # noqa: E402
from darts_engine.model.genotype import derive_genotype  # noqa: E402
from darts_engine.runs.store import RunStore  # noqa: E402

STEPS_PER_EPOCH = 50
ALPHA_EVERY = 10


def fill_run(store: RunStore, epochs: int, seed: int) -> str:
    """A finished DARTS-space run with realistic history sizes (synthetic numbers)."""
    cfg = SearchConfig(space="darts", dataset="digits", epochs=epochs, seed=seed, cells=5,
                       init_channels=8, name=f"bench {seed}")
    space = SPACES.get("darts")
    run_id = store.create_run(cfg.to_dict(), name=cfg.name, status="running")
    rec = store.recorder(run_id)
    rec(RunStarted(cfg.to_dict(), "cpu", 123_456, STEPS_PER_EPOCH, space.ops,
                   {c: space.edge_labels for c in space.cell_types}))
    rng = np.random.default_rng(seed)
    alphas = {c: 1e-3 * rng.normal(size=(14, 8)) for c in space.cell_types}
    drift = np.zeros((14, 8))
    drift[:, space.ops.index("skip_connect")] = 0.004  # a slow collapse towards skip
    step = 0
    for epoch in range(epochs):
        for _ in range(STEPS_PER_EPOCH):
            step += 1
            for c, a in alphas.items():
                alphas[c] = a + drift + 0.003 * rng.normal(size=(14, 8))
            loss = 2.3 * np.exp(-step / 3000) + 0.1 * rng.random()
            rec(StepRecord(epoch=epoch, step=step, train_loss=loss, val_loss=loss + 0.1,
                           metrics={"train_acc": 1 - loss / 2.5, "val_acc": 1 - loss / 2.4},
                           lr=0.02, arch_lr=3e-4,
                           step_time=0.05, alpha_grad_norm=0.1, weight_grad_norm=1.0,
                           alphas={c: a.copy() for c, a in alphas.items()}
                           if step % ALPHA_EVERY == 0 else None))
        genotype = str(derive_genotype("darts", alphas))
        rec(EpochRecord(epoch=epoch, step=step, train_loss=loss, val_loss=loss + 0.15,
                        metrics={"train_acc": 1 - loss / 2.5, "val_acc": 1 - loss / 2.3},
                        lr=0.02, epoch_time=2.5,
                        wall_time=2.5 * (epoch + 1),
                        alphas={c: a.copy() for c, a in alphas.items()}, genotype=genotype))
    rec(RunFinished("completed", epochs, genotype))
    rec.close()
    return run_id


def time_page(page: str, query: dict[str, str], repeat: int) -> dict[str, float]:
    """Median wall and CPU ms of a page run, with the data cache cleared before each run (cold)
    and kept (warm). CPU time is this process's (all threads): on a machine shared with other
    work it is close to what the wall time would be on an idle one."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    times: dict[str, list[float]] = {"cold": [], "cold_cpu": [], "warm": [], "warm_cpu": []}
    for _ in range(repeat):
        for mode in ("cold", "warm"):
            if mode == "cold":
                st.cache_data.clear()
            t, c = time.perf_counter(), time.process_time()
            at.run()
            times[mode].append(time.perf_counter() - t)
            times[f"{mode}_cpu"].append(time.process_time() - c)
            assert not at.exception, at.exception
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def compile_ms(*scripts: str) -> float:
    """CPU ms to compile the scripts as Streamlit does: AppTest pays it on every run, a
    server once."""
    from streamlit.runtime.scriptrunner import magic

    t = time.process_time()
    for name in scripts:
        source = (ROOT / name).read_text()
        compile(magic.add_magic(source, name), name, "exec")
    return 1000 * (time.process_time() - t)


def report(what: str, ms: dict[str, float], target: int) -> None:
    print(f"{what}: cold {ms['cold']:6.1f} ms wall ({ms['cold_cpu']:6.1f} CPU)   "
          f"warm {ms['warm']:6.1f} ms wall ({ms['warm_cpu']:6.1f} CPU)   (target < {target} ms)")


def first_point(home: Path, warm: bool) -> float:
    """Seconds from RunManager.launch() of the collapse demo to its first stored step; with
    `warm`, after runs.warm_up() (the dashboard runs it in the background at start-up)."""
    from darts_engine.runs.manager import RunManager, warm_up
    from darts_engine.train.presets import DEFAULT_PRESET, preset_config

    if warm:
        warm_up()
    mgr = RunManager(RunStore(home), max_concurrent=2)
    cfg = preset_config(DEFAULT_PRESET, device="cpu")
    t = time.perf_counter()
    run_id = mgr.launch(cfg)
    while mgr.store.step_metrics(run_id, max_points=1).empty:
        time.sleep(0.02)
    elapsed = time.perf_counter() - t
    mgr.shutdown()
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "runs"
        os.environ["DARTBOARD_HOME"] = str(home)
        # First, while this process has imported nothing heavy yet (the pages' start-up
        # warm-up would otherwise have done it).
        print("Start -> first step point, collapse demo (target < 5 s):")
        print(f"  first launch in this process, before warm-up: "
              f"{first_point(Path(tmp) / 'cold', warm=False):.2f} s")
        print(f"  after the start-up warm-up, as in the dashboard: "
              f"{first_point(Path(tmp) / 'warm', warm=True):.2f} s")
        store = RunStore(home)
        t = time.perf_counter()
        ids = [fill_run(store, args.epochs, seed) for seed in range(4)]
        print(f"filled 4 darts-space runs x {args.epochs} epochs x {STEPS_PER_EPOCH} steps "
              f"in {time.perf_counter() - t:.1f} s")
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        report("live page, 1 run    ", time_page("pages/live.py", {"run": ids[0]}, args.repeat),
               150)
        report("compare page, 4 runs", time_page("pages/compare.py", {"runs": ",".join(ids)},
                                                 args.repeat), 400)
        print(f"  (of which AppTest-only script compiling: live "
              f"{compile_ms('app.py', 'pages/live.py'):.0f} ms, compare "
              f"{compile_ms('app.py', 'pages/compare.py'):.0f} ms CPU per run)")
        import streamlit as st

        st.cache_resource.clear()  # releases the pages' run manager


if __name__ == "__main__":
    main()
