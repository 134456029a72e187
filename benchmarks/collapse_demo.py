"""Run the collapse demo pair headless and print its per-epoch indicator tables.

    python benchmarks/collapse_demo.py                      # the preset, both runs concurrently
    python benchmarks/collapse_demo.py --sequential --every 5 --set epochs=40 --set augment=true

The pair is the launch page's "Collapse demo" preset (darts_engine/train/presets.py) run twice with
the same seed: bi-level first order and single-level, on CPU with one thread each, in two
processes at once (or one after the other). For each run it prints, per epoch, accuracy and the
collapse indicators of the normal cell (NB201: the cell), then the alerts that fired, the final
genotype and the wall time. Epochs count from 1, as on the dashboard and in the CLI's lines.
`--json PATH` also writes every epoch's indicators (there `epoch` is the engine's 0-based one).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine import SearchConfig, search  # noqa: E402
from darts_engine.config import _coerce  # noqa: E402
from darts_engine.events import AlertRecord, EpochRecord, Event  # noqa: E402
from darts_engine.train.presets import PRESETS, preset_values  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a config field of the preset (repeatable)")
    ap.add_argument("--sequential", action="store_true", help="run one after the other")
    ap.add_argument("--only", choices=ALGORITHMS, help="run just one of the pair")
    ap.add_argument("--every", type=int, default=1, help="print every N-th epoch")
    ap.add_argument("--json", help="also write the per-epoch indicators to this file")
    args = ap.parse_args()
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key] = _coerce(key, value)
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


if __name__ == "__main__":
    main()
