"""The trilevel SR collapse pair headless: the CPU preset (weight-only warm-up, FLOPs band) and
the collapse preset (no warm-up, fixed FLOPs pressure), same seed, one thread each, in two
processes at once. Prints per epoch the validation PSNR against bicubic, the derived network's
PSNR, GFLOPs (one 1280×720 output) and parameters, the parameter-free mass of the cell level and
the chosen depth; then the PSNR table of both runs and the CPU preset's step time.

    python benchmarks/sr_collapse_pair.py                 # the presets as the Launch page has them
    python benchmarks/sr_collapse_pair.py --set epochs=6 --set patches_per_epoch=256

Numbers on a loaded machine are 5-8x slower: compare the two runs' PSNR, not the seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine import SearchConfig, search  # noqa: E402
from darts_engine.config import _coerce  # noqa: E402
from darts_engine.events import EpochRecord, StepRecord  # noqa: E402
from darts_engine.tasks.sisr import SR_COLLAPSE_PRESET, SR_CPU_PRESET  # noqa: E402
from darts_engine.train.presets import preset_values  # noqa: E402


def run(args: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    title, changes = args
    cfg = SearchConfig.from_dict({**preset_values(title), "threads": 1, "device": "cpu",
                                  **changes})
    rows: list[dict[str, Any]] = []
    step_times: list[float] = []

    def on_event(ev: Any) -> None:
        if isinstance(ev, StepRecord):
            step_times.append(ev.step_time)
        if isinstance(ev, EpochRecord):
            m, ind = ev.metrics, ev.indicators
            rows.append({"epoch": ev.epoch + 1, "psnr": m["val_psnr"], "bicubic": m["bicubic_psnr"],
                         "derived": m["derived_psnr"], "gflops": m["derived_gflops"],
                         "params": m["derived_params"], "flops_w": m["flops_weight"],
                         "pf": ind.get("pf_mass.cell", np.nan),
                         "skips": ind.get("skip_count.cell", np.nan),
                         "depth": ev.genotype.split("output=")[1].split(",")[0]})

    t0 = time.perf_counter()
    result = search(cfg, on_event)
    return {"title": title, "status": result.status, "error": result.error, "rows": rows,
            "genotype": result.genotype, "wall": time.perf_counter() - t0,
            "step_ms": 1000 * float(np.median(step_times)) if step_times else np.nan,
            "warmup": cfg.warmup_epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a config field of both runs")
    args = parser.parse_args()
    changes = {}
    for item in args.set:
        name, _, value = item.partition("=")
        changes[name] = _coerce(name, value)
    jobs = [(SR_CPU_PRESET, changes), (SR_COLLAPSE_PRESET, changes)]
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(run, jobs)
    for r in results:
        print(f"\n== {r['title']} ({r['status']}{': ' + r['error'] if r['error'] else ''}), "
              f"warm-up {r['warmup']} epochs, {r['wall']:.0f} s, median step "
              f"{r['step_ms']:.0f} ms")
        print(" epoch  PSNR  bicubic  Δ dB  derived  GFLOPs  params  FLOPs-w  pf-mass  skips  depth")
        for row in r["rows"]:
            print(f"  {row['epoch']:4d} {row['psnr']:6.2f} {row['bicubic']:7.2f} "
                  f"{row['psnr'] - row['bicubic']:+6.2f} {row['derived']:7.2f} "
                  f"{row['gflops']:7.2f} {row['params']:7.0f} {row['flops_w']:8.3g} "
                  f"{row['pf']:7.2f} {row['skips']:6.0f}  {row['depth']}")
        print(f"  genotype: {r['genotype']}")
    print("\nPSNR table (last epoch, validation crops of the built-in test photos, Y, ×2):")
    print(" run                                                       PSNR   Δ bicubic  GFLOPs  depth")
    for r in results:
        last = r["rows"][-1] if r["rows"] else None
        if last:
            print(f" {r['title']:56s} {last['psnr']:6.2f}  {last['psnr'] - last['bicubic']:+6.2f}"
                  f"   {last['gflops']:6.2f}  {last['depth']}")
    print(f" bicubic                                                  "
          f"{results[0]['rows'][-1]['bicubic']:6.2f}")


if __name__ == "__main__":
    main()
