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
**Seed 2 (the default)**, measured with the current engine:

- Both supernets reach ~0.99 validation accuracy: accuracy alone hides the difference.
- **Bi-level** drifts to parameter-free ops: their mass rises 0.63 → 0.75 by epoch 23, mostly
  `none` (0.19 → 0.37; `none` leads on 3 of the 6 edges, one at weight 0.70) and pooling. Its
  derived cell ends with 3 `none` edges, 2 pooling edges and one convolution.
- skip_connect does **not** take over on this data (its mass falls 0.19 → 0.10), so watch skip
  and `none` separately.
- Its edges decide fast: entropy 0.99 → 0.75, top-1 margin 0.04 → 0.30; DARTS+'s
  stable-ranking alert fires at epoch 22.
- λmax of the validation Hessian doubles (0.09 → 0.21 by epoch 20), then falls (0.04 at
  epoch 40) once the edges are decided, so the DARTS-ES rule stays quiet on this run.
- **Single-level** keeps its α near uniform (entropy 0.99 → 0.97, margin ~0.07,
  parameter-free mass 0.62 → 0.55), but partly because it stops moving: its α gradient fades
  from 0.07 to 0.003 once the training stream is fitted, so its derived cell (4 pooling edges
  here) is read off near-uniform weights and means little.
- Its λmax drifts up (0.10 → 0.20) and the DARTS-ES alert fires at epoch 40 on this run that
  did not collapse: λmax is noisy on a network this small.

**Seeds 0 and 1** (add `--set seed=0` or `--set seed=1`): the bi-level run always decides
(entropy down to 0.77–0.88) and ends with 3–4 parameter-free edges, but its parameter-free mass
stays flat (0.63 → 0.63) or falls (0.63 → 0.60), pooling or `none` taking the weight;
single-level stays undecided (entropy 0.97–0.98) every time.

**Why these settings:** the digits are randomly shifted so they cannot simply be memorised; the
arch learning rate is 3.5× the auto value and α weight decay is off so the drift shows within
40 epochs. About 3 minutes for the pair on an idle 2-core CPU.

**Does the collapse hurt? Not on digits.** Retraining the pair's final cells and the all-3×3-conv
reference from scratch (NB201 recipe, CPU preset: C=8, N=2, 12 epochs; 3 seeds each; held-out
digits) gave 97.7 ± 1.4% for the bi-level cell, 98.1 ± 0.3% for the single-level cell and
97.3 ± 0.8% for the reference: within noise, because 8×8 digits need little architecture. On
`shapes` (16×16, same settings otherwise) the same test separates cells: the bi-level cell
retrained to 99.7 ± 0.3% and the reference to 99.8 ± 0.1%, while that run's single-level cell
had no path from input to output (`none` on every edge into nodes 1 and 2) and scored 12.7%,
chance. So collapse, when it happens, shows on shapes, and there it was the single-level run
that fell into `none`. Reproduce: `python benchmarks/collapse_demo.py --retrain --seeds 3`
(add `--set dataset=shapes`); the pair's Compare page retrains them with one click."""


PRESETS: dict[str, Preset] = {
    "Collapse demo: bi-level vs single-level": Preset(
        "Bi-level DARTS and single-level search, same seed, one NAS-Bench-201 cell; ~3 min.\n"
        "Both reach ~0.99 accuracy, but bi-level hands its edges to `none` and pooling.\n"
        "Single-level stays undecided. Watch parameter-free and `none` mass, not skip.",
        {"space": "nb201", "algorithm": "bilevel-1st", "dataset": "digits", "init_channels": 16,
         "cells": 1, "augment": True, "arch_lr": 3e-2, "arch_weight_decay": 0.0, "epochs": 40,
         "batch_size": 64, "hessian_every": 4, "gap_every": 10, "name": "collapse demo"},
        pair=True, indicator="pf_mass", measured=_DEMO_MEASURED,
        reproduce="python benchmarks/collapse_demo.py"),
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
