"""Named launch presets: what a lecturer reads before pressing Start, config overrides on top of
SearchConfig's defaults, and whether to launch the config as a bi-level / single-level pair.

The launch form lists these in order (the first is its default); `preset_config` turns one into a
validated SearchConfig. A preset's `description` is at most three short lines of what the run
will show; what was measured on it, and the command that measures it again, are separate fields
(the launch page's "What we measured"). `indicator` names the collapse indicator the preset's
story is about: the compare page opens on it for runs launched from the preset.

Hyper-parameters of the paper presets come from the papers and their reference code: DARTS
(Liu et al. 2019; quark0/darts `cnn/train_search.py`) and NAS-Bench-201 (Dong & Yang 2020;
AutoDL-Projects `configs/nas-benchmark/algos/DARTS.config`). The Guide page explains each
indicator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import SearchConfig

# The compare page's indicator when the runs come from no single preset: where collapse shows
# first in a search that drifts to none, skip or pooling (parameter-free ops).
DEFAULT_INDICATOR = "pf_mass"


@dataclass(frozen=True)
class Preset:
    description: str                # at most 3 short lines ("\n"-separated): what you will see
    overrides: dict[str, Any] = field(default_factory=dict)
    pair: bool = False
    indicator: str = DEFAULT_INDICATOR  # an indicator registry name, e.g. "none_mass"
    measured: str = ""              # markdown: the numbers measured on this preset
    reproduce: str = ""             # the shell command that measures them again


_DEMO_MEASURED = """\
**Seed 2 (the default)**, measured with the current engine (torch 2.14 CPU, one thread a run):

- Both supernets reach 0.98–0.99 validation accuracy: accuracy alone hides the difference.
- Both start from a derived cell of 5 parameter-free edges (pooling leads while the convolutions
  are untrained). **Single-level** moves towards convolutions (3 parameter-free edges, no
  `none`); **bi-level** hands pooling's lead to `none` instead: 3–4 of its 6 edges are `none` from
  epoch 5 on, `none` mass rises 0.18 → 0.47 and parameter-free mass 0.66 → 0.74 by epoch 8
  (0.71 at the end), while skip mass falls 0.19 → 0.02.
- Bi-level's edges decide: entropy 0.97 → 0.49, top-1 margin 0.07 → 0.53. Single-level's stay
  near uniform (entropy 0.98 → 0.93, margin ~0.1), partly because its α gradient fades
  (0.075 → 0.006) once the training stream is fitted: its cell is read off near-uniform weights.
- λmax stays 0.06–0.24 on both, so DARTS-ES stays quiet; DARTS+'s stable-ranking alert fires
  on the single-level run (epoch 31): a ranking that no longer moves is not a collapse.

**Seeds 0–4** (`--set seed=N`), same machine: bi-level's final cell has 1, 2, 3, 3, 3 `none`
edges (2–5 parameter-free), single-level's 0, 0, 0, 0, 1 (2–3 parameter-free); bi-level's
`none` mass rises on every seed (to 0.21–0.47) while single-level's stays 0.14–0.20, and
bi-level's entropy ends at 0.49–0.83, single-level's at 0.93–0.95. Parameter-free mass is
seed-dependent for bi-level (it ends above its start only on seed 2), so `none` mass is the
indicator the Compare page opens on.

**Why these settings:** the digits are randomly shifted on the weights' stream so they cannot
simply be memorised; the arch learning rate (6e-2) is ~7× the auto value and α weight decay is
off so the drift shows within 40 epochs (at 3e-2, seed 2 ends with 2 parameter-free edges and
`none` mass 0.31). This small network is sensitive to floating point: another CPU or torch
build can give other curves for the same seed (an earlier session's machine did). About
1.6 minutes for the pair on an idle 2-core CPU (93 s of CPU for the bi-level run), 3–5 minutes
when the cores are busy.

**Does the collapse hurt? Barely, on digits.** Retraining these final cells and the all-3×3-conv
reference from scratch (NB201 recipe, CPU preset: C=8, N=2, 12 epochs; seeds 2–4; held-out
digits) gave 97.0 ± 0.3% for the bi-level cell, 98.1 ± 0.7% for the single-level cell and
97.8 ± 0.7% for the reference (29 s for the 9 retrains): the bi-level cell is about a point
lower, near the noise, because 8×8 digits need little architecture. On `shapes` (16×16; measured
at arch lr 3e-2 in an earlier session) a cell with no path from input to output (`none` on
every edge into two nodes) retrained to 12.7%, chance. Reproduce: `.venv/bin/python
benchmarks/collapse_demo.py --retrain --seeds 3` (add `--set dataset=shapes`); the pair's
Compare page retrains them with one click."""


PRESETS: dict[str, Preset] = {
    "Collapse demo: bi-level vs single-level": Preset(
        "Bi-level DARTS and single-level search, same seed, one NAS-Bench-201 cell; ~2-5 min.\n"
        "Both reach ~0.99 accuracy, but bi-level decides its edges and hands them to `none`.\n"
        "Single-level stays near uniform. Watch `none` mass and entropy, not skip.",
        {"space": "nb201", "algorithm": "bilevel-1st", "dataset": "digits", "init_channels": 16,
         "cells": 1, "augment": True, "arch_lr": 6e-2, "arch_weight_decay": 0.0, "epochs": 40,
         "batch_size": 64, "hessian_every": 4, "gap_every": 10, "name": "collapse demo"},
        pair=True, indicator="none_mass", measured=_DEMO_MEASURED,
        reproduce=".venv/bin/python benchmarks/collapse_demo.py"),
    "Quick look (seconds)": Preset(
        "A tiny NAS-Bench-201 search on procedural shapes: 5 epochs in a few seconds.\n"
        "Every panel fills in; at this size the numbers mean little.",
        {"space": "nb201", "algorithm": "bilevel-1st", "dataset": "shapes", "data_limit": 512,
         "init_channels": 8, "cells": 1, "epochs": 5, "batch_size": 32, "name": "quick look"}),
    "DARTS paper settings (CIFAR-10)": Preset(
        "DARTS' own CIFAR-10 search (Liu et al. 2019): 8 cells, C=16, 50 epochs.\n"
        "Watch skip_connect gain weight in the normal cell as the epochs go (DARTS+, 2019).\n"
        "Needs CIFAR-10 under data_root (or download on) and, realistically, a GPU.",
        {"space": "darts", "algorithm": "bilevel-1st", "dataset": "cifar10", "init_channels": 16,
         "cells": 8, "epochs": 50, "batch_size": 64, "lr": 0.025, "lr_min": 0.001,
         "weight_decay": 3e-4, "arch_lr": 3e-4, "augment": True, "name": "DARTS CIFAR-10"},
        indicator="skip_mass"),
    "NAS-Bench-201 settings (CIFAR-10)": Preset(
        "NAS-Bench-201's DARTS setup (Dong & Yang 2020): C=16, N=5, 50 epochs, w step first.\n"
        "In the benchmark's own runs DARTS ends in the all-skip_connect cell: watch skip mass.\n"
        "Needs CIFAR-10 under data_root (or download on) and a GPU.",
        {"space": "nb201", "algorithm": "bilevel-1st", "dataset": "cifar10", "init_channels": 16,
         "cells": 5, "epochs": 50, "batch_size": 64, "lr": 0.025, "lr_min": 0.001,
         "weight_decay": 5e-4, "nesterov": True, "arch_lr": 3e-4, "augment": True,
         "step_order": "weights-first", "name": "NB201 CIFAR-10"},
        indicator="skip_mass"),
}

DEFAULT_PRESET = next(iter(PRESETS))


def preset_values(name: str) -> dict[str, Any]:
    """Every config field's value under the preset: SearchConfig's defaults, then overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return {**SearchConfig().to_dict(), **PRESETS[name].overrides}


def preset_config(name: str, **changes: Any) -> SearchConfig:
    """The preset as a validated SearchConfig; `changes` override single fields."""
    return SearchConfig.from_dict({**preset_values(name), **changes})


def preset_of(config: Mapping[str, Any]) -> str | None:
    """The preset a run's config was launched from: the preset whose run name it carries, else
    the one whose overrides it matches (the algorithm aside: a pair runs two). None if neither."""
    for title, preset in PRESETS.items():
        if config.get("name") and config.get("name") == preset.overrides.get("name"):
            return title
    for title, preset in PRESETS.items():
        if all(config.get(k) == v for k, v in preset.overrides.items()
               if k not in ("name", "algorithm")):
            return title
    return None


def story_indicator(configs: Iterable[Mapping[str, Any]]) -> str:
    """The indicator to show first for these runs: their preset's, if they all come from the
    same one, else DEFAULT_INDICATOR."""
    titles = {preset_of(c) for c in configs}
    if len(titles) == 1 and (title := titles.pop()) is not None:
        return PRESETS[title].indicator
    return DEFAULT_INDICATOR
