"""Time full search steps (α step + w step) on synthetic tensors; data loading excluded.

    python benchmarks/step_time.py --space darts --algorithm bilevel-1st --C 8 --cells 5 \
        --size 8 --batch 64 --threads 1

Prints one JSON line per (space, algorithm) with median_s, min_s, peak_rss_mb, n_params and
the configuration. Comma-separated values (or "all") for --space / --algorithm run a matrix.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine import ALGORITHMS, SPACES  # noqa: E402
from darts_engine.algorithms import StepContext  # noqa: E402
from darts_engine.search import resolve_device  # noqa: E402
from darts_engine.spaces import DataShape  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_steps(space: str, algorithm: str, args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    sp = SPACES.get(space)
    torch.manual_seed(0)
    model = sp.build(args.C, args.cells, DataShape(args.in_ch, args.size, args.classes),
                     seed=0).to(device)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9,
                            weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-4, betas=(0.5, 0.999),
                             weight_decay=1e-3)
    ctx = StepContext(model, w_opt, a_opt, lr=0.025, grad_clip=5.0)
    algo = ALGORITHMS.get(algorithm)
    g = torch.Generator().manual_seed(1)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(args.batch, args.in_ch, args.size, args.size, generator=g)
        y = torch.randint(0, args.classes, (args.batch,), generator=g)
        return x.to(device), y.to(device)

    batches = [(batch(), batch()) for _ in range(min(4, args.steps + args.warmup))]
    model.train()
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup + args.steps):
        train, held = batches[i % len(batches)]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        algo.step(ctx, train, held if algo.uses_held_out else None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    out = {
        "space": space, "algorithm": algorithm, "median_s": statistics.median(times),
        "min_s": min(times), "peak_rss_mb": round(peak_rss_mb(), 1),
        "n_params": model.n_weight_params(),
        "config": {"C": args.C, "cells": args.cells, "size": args.size, "in_ch": args.in_ch,
                   "classes": args.classes, "batch": args.batch, "steps": args.steps,
                   "warmup": args.warmup, "threads": torch.get_num_threads(),
                   "device": str(device)},
    }
    if device.type == "cuda":
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default="darts")
    p.add_argument("--algorithm", default="bilevel-1st")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--size", type=int, default=8)
    p.add_argument("--in-ch", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="JSON lines only (no table)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spaces = SPACES.names() if args.space == "all" else args.space.split(",")
    algos = ALGORITHMS.names() if args.algorithm == "all" else args.algorithm.split(",")
    rows = []
    for space in spaces:
        for algo in algos:
            row = time_steps(space, algo, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if not args.json:
        print(f"\n{'space':<8}{'algorithm':<14}{'median s':>10}{'min s':>10}{'params':>10}",
              file=sys.stderr)
        for r in rows:
            print(f"{r['space']:<8}{r['algorithm']:<14}{r['median_s']:>10.4f}{r['min_s']:>10.4f}"
                  f"{r['n_params']:>10}", file=sys.stderr)


if __name__ == "__main__":
    main()
