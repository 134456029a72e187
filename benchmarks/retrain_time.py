"""Retrain epoch times of both recipes at their CPU-scale presets on built-in data.

    python benchmarks/retrain_time.py --dataset digits --epochs 3 --threads 1
    python benchmarks/retrain_time.py --dataset shapes --epochs 2

Prints one JSON line per (recipe, dataset) with the presets' sizes, the parameter count, the
steps per epoch, every epoch's time (training + the full test pass) and test accuracy. The
cells are the published ones: DARTS_V2 (quark0/darts cnn/genotypes.py) for darts-eval and
NAS-Bench-201's all-3×3-conv cell for nb201. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darts_engine.train.retrain import preset, retrain

CELLS = {
    "darts-eval": (
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
        "reduce_concat=[2, 3, 4, 5])"),
    "nb201": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
              "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="all", help="darts-eval, nb201 or all")
    p.add_argument("--dataset", default="digits,shapes", help="comma-separated")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    recipes = sorted(CELLS) if a.recipe == "all" else a.recipe.split(",")
    for dataset in a.dataset.split(","):
        for recipe in recipes:
            cfg = preset(recipe, dataset=dataset, epochs=a.epochs, threads=a.threads,
                         device=a.device)
            events = []
            r = retrain(cfg, CELLS[recipe], events.append)
            started = next(e for e in events if e.kind == "started")
            epochs = [e for e in events if e.kind == "epoch"]
            print(json.dumps({
                "recipe": recipe, "dataset": dataset, "status": r.status,
                "init_channels": cfg.init_channels,
                "cells": cfg.layers if recipe == "darts-eval" else 3 * cfg.cells_per_stage,
                "batch_size": cfg.batch_size, "n_params": started.n_params,
                "steps_per_epoch": started.steps_per_epoch, "threads": a.threads,
                "epoch_s": [round(e.epoch_time, 2) for e in epochs],
                "test_acc": [round(e.metrics["test_acc"], 4) for e in epochs]}), flush=True)


if __name__ == "__main__":
    main()
