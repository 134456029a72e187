"""Time full search steps (α step + w step) on synthetic tensors; data loading excluded.

    python benchmarks/step_time.py --space darts --algorithm bilevel-1st --C 8 --cells 5 \
        --size 8 --batch 64 --threads 1
    python benchmarks/step_time.py --method darts,pc-darts --C 16 --cells 5 --size 16 --batch 32

Prints one JSON line per (space, algorithm, method) with median_s, min_s, peak_rss_mb, n_params,
act_mb and the configuration. Comma-separated values (or "all") for --space / --algorithm /
--method run a matrix. Methods are built exactly as a search builds them (build_search on
synthetic data); LFR-DARTS is timed in its last stage (full depth, earlier stages frozen).

Memory, measured per method rather than per process (peak_rss_mb only ever grows):
- act_mb: activation memory, i.e. the bytes of every tensor autograd saves for the backward of
  one weight-step forward (torch.autograd.graph.saved_tensors_hooks; storages counted once,
  parameters excluded). This is what partial channels shrink, and it dominates the peak.
- peak_step_mb (--profile-memory on CPU; always on CUDA): the peak of allocated memory during
  one full step above the level before it, from torch.profiler's memory timeline on CPU (slow)
  or torch.cuda.max_memory_allocated on CUDA.
When both darts and pc-darts run for a (space, algorithm), a ratio line follows: PC-DARTS'
memory and median step time over plain DARTS' at the same batch (PC-DARTS' target: ≤ 0.4×).

`--impl fast,plain` (or all) times both supernet forwards (fastcell.py's batched edges and the
per-op reference) and adds a "fast / plain" line: speed-up and memory ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine import ALGORITHMS, METHODS, SPACES, SearchConfig, build_search  # noqa: E402
from darts_engine.model.fastcell import IMPLS  # noqa: E402
from darts_engine.search import SearchSetup, resolve_device  # noqa: E402
from darts_engine.train.data import BatchStream, ImageSet, SearchData  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_setup(space: str, algorithm: str, method: str, args: argparse.Namespace,
                    impl: str = "fast") -> SearchSetup:
    """A real search setup (method hooks included) on random images of the given shape."""
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(1)
    n = args.batch
    images = ImageSet(torch.randn(2 * n, args.in_ch, args.size, args.size, generator=g),
                      torch.randint(0, args.classes, (2 * n,), generator=g),
                      (0.0,) * args.in_ch, (1.0,) * args.in_ch, args.classes, flip=False)
    idx = torch.arange(2 * n)
    data = SearchData(BatchStream(images, idx[:n], n, 0, 0, False, device),
                      BatchStream(images, idx[n:], n, 0, 1, False, device), images.shape)
    cfg = SearchConfig(space=space, algorithm=algorithm, method=method, init_channels=args.C,
                       cells=args.cells, batch_size=n, device=str(device), seed=0, epochs=3,
                       arch_lr=3e-4, pc_k=args.pc_k, lfr_stages=3, impl=impl)
    s = build_search(cfg, data)
    s.model.train()
    s.method.begin_epoch(s, cfg.epochs - 1)  # LFR-DARTS: derive, freeze, deepen to the end
    return s


def activation_mb(s: SearchSetup, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Bytes autograd keeps for the backward of one weight-step forward (see the docstring)."""
    params = {p.untyped_storage().data_ptr() for p in s.model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    mixing = s.ctx.w_step_mixing(s.model, batch) if s.ctx.w_step_mixing else None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(s.model(batch[0], mixing), batch[1])
    del loss
    return sum(saved.values()) / 2**20


def profiled_peak_mb(s: SearchSetup, train: tuple, held: tuple | None) -> float:
    """Peak allocated CPU memory during one full step above its starting level (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        s.algorithm.step(s.ctx, train, held)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "timeline.json"
        prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(path.read_text())
    total = np.asarray(sizes).sum(axis=1)  # (time, categories) -> (time,)
    return float(total.max() - total[0]) / 2**20


def time_steps(space: str, algorithm: str, method: str, args: argparse.Namespace,
               impl: str = "fast") -> dict:
    s = synthetic_setup(space, algorithm, method, args, impl)
    device = s.device
    g = torch.Generator().manual_seed(1)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(args.batch, args.in_ch, args.size, args.size, generator=g)
        y = torch.randint(0, args.classes, (args.batch,), generator=g)
        return x.to(device), y.to(device)

    batches = [(batch(), batch()) for _ in range(min(4, args.steps + args.warmup))]
    uses_held = s.algorithm.uses_held_out
    times, cpu_times = [], []  # wall; process CPU time (robust on a shared, busy machine)
    for i in range(args.warmup + args.steps):
        train, held = batches[i % len(batches)]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            if i == args.warmup:
                base = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
        t0, c0 = time.perf_counter(), time.process_time()
        s.algorithm.step(s.ctx, train, held if uses_held else None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    out = {
        "space": space, "algorithm": algorithm, "method": method, "impl": impl,
        "median_s": statistics.median(times), "min_s": min(times),
        "median_cpu_s": statistics.median(cpu_times),
        "peak_rss_mb": round(peak_rss_mb(), 1), "n_params": s.model.n_weight_params(),
        "act_mb": round(activation_mb(s, batches[0][0]), 2),
        "config": {"C": args.C, "cells": args.cells, "size": args.size, "in_ch": args.in_ch,
                   "classes": args.classes, "batch": args.batch, "steps": args.steps,
                   "warmup": args.warmup, "threads": torch.get_num_threads(),
                   "device": str(device), **({"pc_k": args.pc_k} if method == "pc-darts" else {})},
    }
    if device.type == "cuda":
        out["peak_step_mb"] = round((torch.cuda.max_memory_allocated(device) - base) / 2**20, 1)
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name(device)
    elif args.profile_memory:
        train, held = batches[0]
        out["peak_step_mb"] = round(profiled_peak_mb(s, train, held if uses_held else None), 2)
    return out


def ratio_rows(rows: list[dict]) -> list[dict]:
    """PC-DARTS over plain DARTS, per (space, algorithm) where both ran."""
    by_key = {(r["space"], r["algorithm"], r["method"], r["impl"]): r for r in rows}
    out = []
    for (space, algo, method, impl), pc in by_key.items():
        plain = by_key.get((space, algo, "darts", impl))
        if method != "pc-darts" or plain is None:
            continue
        row = {"ratio": "pc-darts / darts", "space": space, "algorithm": algo, "impl": impl,
               "pc_k": pc["config"]["pc_k"], "batch": pc["config"]["batch"],
               "act_mb_ratio": round(pc["act_mb"] / plain["act_mb"], 3),
               "step_time_ratio": round(pc["median_s"] / plain["median_s"], 3)}
        if "peak_step_mb" in pc and "peak_step_mb" in plain:
            row["peak_step_mb_ratio"] = round(pc["peak_step_mb"] / plain["peak_step_mb"], 3)
        out.append(row)
    return out


def impl_ratio_rows(rows: list[dict]) -> list[dict]:
    """Fast over plain supernet forward, per (space, algorithm, method) where both ran."""
    by_key = {(r["space"], r["algorithm"], r["method"], r["impl"]): r for r in rows}
    out = []
    for (space, algo, method, impl), fast in by_key.items():
        plain = by_key.get((space, algo, method, "plain"))
        if impl != "fast" or plain is None:
            continue
        row = {"ratio": "fast / plain", "space": space, "algorithm": algo, "method": method,
               "speedup": round(plain["median_s"] / fast["median_s"], 3),
               "cpu_speedup": round(plain["median_cpu_s"] / fast["median_cpu_s"], 3),
               "act_mb_ratio": round(fast["act_mb"] / plain["act_mb"], 3)}
        if "peak_step_mb" in fast and "peak_step_mb" in plain:
            row["peak_step_mb_ratio"] = round(fast["peak_step_mb"] / plain["peak_step_mb"], 3)
        out.append(row)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default="darts")
    p.add_argument("--algorithm", default="bilevel-1st")
    p.add_argument("--method", default="darts",
                   help=f"comma-separated, or all: {', '.join(METHODS.names())}")
    p.add_argument("--pc-k", type=int, default=4, help="PC-DARTS K (partial channels)")
    p.add_argument("--impl", default="fast",
                   help="supernet forward, comma-separated or all: fast (batched edges, "
                        "fastcell.py), plain (per-op reference)")
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
    p.add_argument("--profile-memory", action="store_true",
                   help="on CPU also measure the peak of one step with torch.profiler (slow)")
    p.add_argument("--json", action="store_true", help="JSON lines only (no table)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spaces = SPACES.names() if args.space == "all" else args.space.split(",")
    algos = ALGORITHMS.names() if args.algorithm == "all" else args.algorithm.split(",")
    methods = METHODS.names() if args.method == "all" else args.method.split(",")
    impls = list(IMPLS) if args.impl == "all" else args.impl.split(",")
    rows = []
    for space in spaces:
        for algo in algos:
            for method in methods:
                for impl in impls:
                    row = time_steps(space, algo, method, args, impl)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    ratios = ratio_rows(rows) + impl_ratio_rows(rows)
    for r in ratios:
        print(json.dumps(r), flush=True)
    if not args.json:
        print(f"\n{'space':<8}{'algorithm':<14}{'method':<11}{'impl':<7}{'median s':>10}"
              f"{'min s':>10}{'act MB':>9}{'params':>10}", file=sys.stderr)
        for r in rows:
            print(f"{r['space']:<8}{r['algorithm']:<14}{r['method']:<11}{r['impl']:<7}"
                  f"{r['median_s']:>10.4f}{r['min_s']:>10.4f}{r['act_mb']:>9.1f}"
                  f"{r['n_params']:>10}", file=sys.stderr)
        for r in ratios:
            if r["ratio"] == "fast / plain":
                peak = (f", peak {r['peak_step_mb_ratio']:.2f}x" if "peak_step_mb_ratio" in r
                        else "")
                print(f"fast / plain on {r['space']} {r['algorithm']} {r['method']}: speed-up "
                      f"{r['speedup']:.2f}x (CPU time {r['cpu_speedup']:.2f}x), activations "
                      f"{r['act_mb_ratio']:.2f}x{peak}",
                      file=sys.stderr)
                continue
            peak = (f", peak {r['peak_step_mb_ratio']:.2f}x" if "peak_step_mb_ratio" in r
                    else "")
            print(f"PC-DARTS (K={r['pc_k']}) / DARTS on {r['space']} {r['algorithm']} "
                  f"({r['impl']}) at batch {r['batch']}: activations {r['act_mb_ratio']:.2f}x"
                  f"{peak}, step time "
                  f"{r['step_time_ratio']:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    main()
