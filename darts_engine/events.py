"""Plain-data records the search loop reports, one type per kind.

Everything here is floats, ints, strings and NumPy arrays: no tensors, no modules. The store
persists them, the CLI prints them, the dashboard only ever sees copies read back from the store.
Alphas are always the *raw* logits, keyed by cell type ("normal"/"reduce" or "cell"), shape
(edges, ops) in the space's canonical edge and op order. In RobustDARTS S1, where each edge has
only 2 of the ops, the others are −inf: any relaxation gives them weight exactly 0.

A run declares what it records (`RunStarted.task / metrics / artifacts`): the task's metrics by
name (`metric(...)`, exactly one the headline) and the per-epoch arrays its task and method
store in `EpochRecord.extras` (`artifact(...)`, drawn by kind). Everything downstream reads the
declaration, never a task's or a method's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

NAN = math.nan
SPLITS = ("held_out", "train")
ARTIFACT_EVERY = ("epoch",)


def metric(name: str, label: str, *, unit: str = "", higher_is_better: bool = True,
           headline: bool = False, split: str = "held_out", scale: float = 1.0,
           reference_for: str | None = None) -> dict[str, Any]:
    """A metric declaration (plain data). `scale` is the display multiplier (100 for accuracies
    shown in %); the recorded value is unscaled. `reference_for`: the metric this one is a
    reference line of (bicubic's PSNR for the SR network's), drawn dashed on its curve."""
    if split not in SPLITS:
        raise ValueError(f"metric {name!r}: split must be one of {SPLITS}, got {split!r}")
    return {"name": name, "label": label, "unit": unit, "higher_is_better": higher_is_better,
            "headline": headline, "split": split, "scale": float(scale),
            "reference_for": reference_for}


def artifact(name: str, kind: str, label: str, *, cell: str | None = None,
             every: str = "epoch", **details: Any) -> dict[str, Any]:
    """An artifact declaration (plain data): the array stored in the epoch's extras under
    `name`, drawn by `kind` (edge_weights, edge_logits, stage, stage_cells, image_strip, ...).
    `details`: what the kind's renderer needs besides the array, as plain data (an image
    strip's panel titles, the artifact holding its scores)."""
    if every not in ARTIFACT_EVERY:
        raise ValueError(f"artifact {name!r}: every must be one of {ARTIFACT_EVERY}")
    return {"name": name, "kind": kind, "label": label, "cell": cell, "every": every, **details}


def check_metrics(metrics: tuple[dict[str, Any], ...]) -> None:
    """Exactly one headline, unique names: raises ValueError saying which rule broke."""
    names = [m["name"] for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"metric names must be unique, got {names}")
    headlines = [m["name"] for m in metrics if m["headline"]]
    if len(headlines) != 1:
        raise ValueError(f"exactly one metric must be the headline, got {headlines or 'none'}")


@dataclass(frozen=True)
class RunStarted:
    config: dict[str, Any]          # the resolved config (cells, arch_lr filled in)
    device: str
    n_params: int                   # weight parameters of the supernet (alphas excluded)
    steps_per_epoch: int
    ops: tuple[str, ...]            # α columns
    edges: dict[str, tuple[str, ...]]  # cell type -> edge labels (α rows), e.g. "n0<-s1"
    start_epoch: int = 0            # > 0 when resuming from a checkpoint
    task: str = ""                  # the task's registry name
    metrics: tuple[dict[str, Any], ...] = ()    # `metric(...)` dicts, one headline
    artifacts: tuple[dict[str, Any], ...] = ()  # `artifact(...)` dicts, task's then method's
    kind: str = "started"


@dataclass(frozen=True)
class StepRecord:
    epoch: int                      # 0-based epoch the step belongs to
    step: int                       # global step count after this step (1-based)
    train_loss: float
    val_loss: float = NAN           # the α-step batch (bi-level); NaN when there is none
    metrics: dict[str, float] = field(default_factory=dict)  # the task's, by name (NaN: none)
    lr: float = NAN
    arch_lr: float = NAN
    step_time: float = NAN          # seconds for the update itself, data loading excluded
    alpha_grad_norm: float = NAN
    weight_grad_norm: float = NAN
    alphas: dict[str, np.ndarray] | None = None  # raw α, present every `alpha_every` steps
    kind: str = "step"


@dataclass(frozen=True)
class EpochRecord:
    epoch: int                      # 0-based
    step: int                       # global step count at the end of the epoch
    train_loss: float               # mean over the epoch's steps
    val_loss: float                 # full held-out split, model.eval()
    lr: float
    epoch_time: float               # seconds this epoch took (search + evaluation)
    wall_time: float                # seconds since the run (or resume) started
    alphas: dict[str, np.ndarray]   # raw α at the end of the epoch
    genotype: str                   # reference text format
    metrics: dict[str, float] = field(default_factory=dict)  # the task's, by name: train-split
    #                                 ones are the epoch's step mean, held-out ones a full pass
    indicators: dict[str, float] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # the declared artifacts
    kind: str = "epoch"


@dataclass(frozen=True)
class LogRecord:
    message: str
    level: str = "info"
    epoch: int = -1
    kind: str = "log"


@dataclass(frozen=True)
class AlertRecord:
    epoch: int
    rule: str                       # e.g. "darts+-skip"
    message: str
    action: str = "alert"           # "alert" or "stop"
    kind: str = "alert"


@dataclass(frozen=True)
class RunFinished:
    status: str                     # "completed" | "stopped" | "failed"
    epochs_done: int
    genotype: str = ""
    error: str = ""
    kind: str = "finished"


Event = Union[RunStarted, StepRecord, EpochRecord, LogRecord, AlertRecord, RunFinished]
