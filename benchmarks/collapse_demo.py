"""Run the collapse demo pair headless and print its per-epoch indicator tables.

    .venv/bin/python benchmarks/collapse_demo.py            # the preset, both runs concurrently
    .venv/bin/python benchmarks/collapse_demo.py --sequential --every 5 --set seed=0

The pair is the launch page's "Collapse demo" preset (darts_engine/train/presets.py) run twice with
the same seed: bi-level first order and single-level, on CPU with one thread each, in two
processes at once (or one after the other). For each run it prints, per epoch, accuracy and the
collapse indicators of the normal cell (NB201: the cell), then the alerts that fired, the final
genotype and the wall time. Epochs count from 1, as on the dashboard and in the CLI's lines.
`--json PATH` also writes every epoch's indicators (there `epoch` is the engine's 0-based one).

`--retrain` then answers the demo's question as the Compare page does (darts_engine/runs/demo.py):
the bi-level cell, the single-level cell and the reference cell (NB201 all 3×3 conv) are each
trained from scratch with one recipe and seed (the nb201 recipe's CPU preset on the search's
data, `--retrain-set` to change it), and their final held-out test accuracies are printed, with
each cell's CIFAR-10 accuracy in the configured truth table ($DARTBOARD_TRUTH, else the
labelled analog-nasbench proxy when installed). `--seeds N` retrains every cell with N seeds
(mean ± std), to tell a gap from noise.

    .venv/bin/python benchmarks/collapse_demo.py --retrain --seeds 3 --set epochs=20
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine import SearchConfig, search  # noqa: E402
from darts_engine.config import _coerce  # noqa: E402
from darts_engine.events import AlertRecord, EpochRecord, Event  # noqa: E402
from darts_engine.runs.demo import REFERENCE_RECIPE, demo_recipe  # noqa: E402
from darts_engine.runs.kinds import REFERENCE_CELLS  # noqa: E402
from darts_engine.train.presets import PRESETS, preset_values  # noqa: E402
from darts_engine.train.retrain import RetrainConfig, retrain  # noqa: E402
from darts_engine.truth.base import TruthError  # noqa: E402
from darts_engine.truth.reader import configured_truth  # noqa: E402

DEMO = next(name for name in PRESETS if name.startswith("Collapse demo"))
ALGORITHMS = ("bilevel-1st", "single")

# (header, indicator key without the cell suffix, a task metric or a record field, format)
COLUMNS = [("train", "train_acc", "{:.3f}"), ("val", "val_acc", "{:.3f}"),
           ("skip_m", "skip_mass", "{:.3f}"), ("none_m", "none_mass", "{:.3f}"),
           ("pf_m", "pf_mass", "{:.3f}"), ("entropy", "entropy", "{:.3f}"),
           ("margin", "margin", "{:.3f}"), ("skip#", "skip_count", "{:.0f}"),
           ("pf#", "pf_count", "{:.0f}"), ("flips", "argmax_flips", "{:.0f}"),
           ("|g_a|", "alpha_grad_norm", "{:.3f}"), ("lmax", "hessian_eig", "{:.3f}"),
           ("gap", "disc_gap", "{:+.3f}")]


def demo_configs(changes: dict[str, Any], algorithms: list[str]) -> list[SearchConfig]:
    base = {**preset_values(DEMO), "device": "cpu", "threads": 1, **changes}
    return [SearchConfig.from_dict({**base, "algorithm": a}) for a in algorithms]


def run_one(cfg: SearchConfig, out: Any = None) -> dict[str, Any]:
    """One search; returns (or puts on `out`) its epochs, alerts, genotype and wall time."""
    epochs: list[dict[str, Any]] = []
    alerts: list[tuple[int, str, str]] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, EpochRecord):
            epochs.append({"epoch": ev.epoch, **ev.metrics, "genotype": ev.genotype,
                           **ev.indicators})
        elif isinstance(ev, AlertRecord):
            alerts.append((ev.epoch, ev.rule, ev.message))

    t0, c0 = time.perf_counter(), time.process_time()
    result = search(cfg, on_event)
    res = {"algorithm": cfg.algorithm, "status": result.status, "error": result.error,
           "genotype": result.genotype, "wall_s": time.perf_counter() - t0,
           "cpu_s": time.process_time() - c0, "epochs": epochs, "alerts": alerts}
    if out is not None:
        out.put(res)
    return res


def _value(row: dict[str, Any], key: str) -> float | None:
    for k in (key, f"{key}.normal", f"{key}.cell"):
        if k in row:
            return row[k]
    return None


def table(res: dict[str, Any], every: int) -> str:
    head = "epoch " + " ".join(f"{h:>7}" for h, _, _ in COLUMNS)
    lines = [head]
    rows = res["epochs"]
    for i, row in enumerate(rows):
        if i % every and i != len(rows) - 1:
            continue
        cells = []
        for _, key, fmt in COLUMNS:
            v = _value(row, key)
            cells.append(f"{'' if v is None else fmt.format(v):>7}")
        lines.append(f"{row['epoch'] + 1:>5} " + " ".join(cells))  # 1-based, as the dashboard
    return "\n".join(lines)


def retrain_one(job: tuple[str, RetrainConfig, str]) -> tuple[str, int, float, float]:
    """(role, seed, final test accuracy, wall seconds) of one retrain."""
    role, cfg, genotype = job
    t0 = time.perf_counter()
    res = retrain(cfg, genotype)
    if res.status != "completed":
        raise RuntimeError(f"retrain of the {role} cell {res.status}: {res.error}")
    return role, cfg.seed, float(res.history[-1]["test_acc"]), time.perf_counter() - t0


def retrain_cells(results: list[dict[str, Any]], configs: list[SearchConfig],
                  changes: dict[str, Any], seeds: int, workers: int) -> None:
    """Retrain each search's final cell and the reference cell; print accuracies per cell."""
    cells = {("bi-level" if r["algorithm"] != "single" else "single-level"): r["genotype"]
             for r in results}
    label, cells["reference"] = REFERENCE_CELLS[REFERENCE_RECIPE]
    base = demo_recipe({"config": configs[0].to_dict(), "genotype": results[0]["genotype"]})
    cfg = RetrainConfig.from_dict({**base.to_dict(), "threads": 1, **changes})
    jobs = [(role, cfg.replace(seed=cfg.seed + k), text)
            for role, text in cells.items() for k in range(seeds)]
    print(f"\n=== retrains: recipe {cfg.recipe} on {cfg.dataset}, {cfg.epochs} epochs, "
          f"C={cfg.init_channels}, N={cfg.cells_per_stage}, seeds {cfg.seed}..{cfg.seed + seeds - 1}"
          f" ({len(jobs)} retrains, {workers} at a time)")
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        done = pool.map(retrain_one, jobs)
    try:
        table = configured_truth()
    except TruthError as e:
        print(f"truth table not used: {e}")
        table = None
    for role, text in cells.items():
        accs = np.array([acc for r, _, acc, _ in done if r == role])
        spread = f" ± {accs.std(ddof=1) * 100:.1f}" if len(accs) > 1 else ""
        runs = ", ".join(f"{100 * a:.1f}" for a in accs)
        name = f"{role} ({label})" if role == "reference" else role
        truth = ""
        if table is not None:
            try:
                entry = table.query(text)
                truth = f"; table CIFAR-10 {entry.test['cifar10']:.2f}% ({entry.protocol})"
            except (TruthError, KeyError):
                truth = "; not in the table"
        print(f"{name:>32}: test {100 * accs.mean():.1f}{spread}% [{runs}]{truth}")
        print(f"{'':>32}  {text}")
    print(f"retrain wall time: {time.perf_counter() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a config field of the preset (repeatable)")
    ap.add_argument("--sequential", action="store_true", help="run one after the other")
    ap.add_argument("--only", choices=ALGORITHMS, help="run just one of the pair")
    ap.add_argument("--every", type=int, default=1, help="print every N-th epoch")
    ap.add_argument("--json", help="also write the per-epoch indicators to this file")
    ap.add_argument("--retrain", action="store_true",
                    help="then retrain both final cells and the reference cell")
    ap.add_argument("--retrain-set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a field of the retrain recipe (repeatable), e.g. epochs=6")
    ap.add_argument("--seeds", type=int, default=1, help="retrain each cell with N seeds")
    args = ap.parse_args()
    changes = _changes(args.set)
    algorithms = [args.only] if args.only else list(ALGORITHMS)
    configs = demo_configs(changes, algorithms)
    print(f"preset {DEMO!r} with {changes or 'no changes'}")
    t0 = time.perf_counter()
    if args.sequential:
        results = [run_one(cfg) for cfg in configs]
    else:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=run_one, args=(cfg, queue)) for cfg in configs]
        for p in procs:
            p.start()
        by_algo = {r["algorithm"]: r for r in (queue.get() for _ in procs)}
        for p in procs:
            p.join()
        results = [by_algo[a] for a in algorithms]
    total = time.perf_counter() - t0
    for res in results:
        print(f"\n=== {res['algorithm']}: {res['status']} {res['error']} in {res['wall_s']:.0f} s "
              f"wall, {res['cpu_s']:.0f} s CPU (one thread: the wall time on an idle core)")
        print(table(res, max(1, args.every)))
        for epoch, rule, message in res["alerts"]:
            print(f"alert at epoch {epoch + 1}: [{rule}] {message}")
        print(f"final genotype: {res['genotype']}")
    print(f"\nwall time for the pair ({'sequential' if args.sequential else 'concurrent'}): "
          f"{total:.0f} s; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.retrain:
        if args.only:
            ap.error("--retrain needs both runs of the pair (drop --only)")
        retrain_cells(results, configs, _retrain_changes(args.retrain_set), max(1, args.seeds),
                      1 if args.sequential else 2)


def _changes(items: list[str]) -> dict[str, Any]:
    changes = {}
    for item in items:
        key, _, value = item.partition("=")
        changes[key] = _coerce(key, value)
    return changes


def _retrain_changes(items: list[str]) -> dict[str, Any]:
    """FIELD=VALUE pairs typed as RetrainConfig's defaults are."""
    defaults = RetrainConfig().to_dict()
    changes: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in defaults:
            raise SystemExit(f"--retrain-set: unknown field {key!r}; one of {sorted(defaults)}")
        kind = type(defaults[key])
        changes[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return changes


if __name__ == "__main__":
    main()
