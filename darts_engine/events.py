"""Plain-data records the search loop reports, one type per kind.

Everything here is floats, ints, strings and NumPy arrays: no tensors, no modules. The store
persists them, the CLI prints them, the dashboard only ever sees copies read back from the store.
Alphas are always the *raw* logits, keyed by cell type ("normal"/"reduce" or "cell"), shape
(edges, ops) in the space's canonical edge and op order. In RobustDARTS S1, where each edge has
only 2 of the ops, the others are −inf: any relaxation gives them weight exactly 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

NAN = math.nan


@dataclass(frozen=True)
class RunStarted:
    config: dict[str, Any]          # the resolved config (cells, arch_lr filled in)
    device: str
    n_params: int                   # weight parameters of the supernet (alphas excluded)
    steps_per_epoch: int
    ops: tuple[str, ...]            # α columns
    edges: dict[str, tuple[str, ...]]  # cell type -> edge labels (α rows), e.g. "n0<-s1"
    start_epoch: int = 0            # > 0 when resuming from a checkpoint
    kind: str = "started"


@dataclass(frozen=True)
class StepRecord:
    epoch: int                      # 0-based epoch the step belongs to
    step: int                       # global step count after this step (1-based)
    train_loss: float
    train_acc: float
    val_loss: float = NAN           # the α-step batch (bi-level); NaN when there is none
    val_acc: float = NAN
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
    train_acc: float
    val_loss: float                 # full held-out split, model.eval()
    val_acc: float
    lr: float
    epoch_time: float               # seconds this epoch took (search + evaluation)
    wall_time: float                # seconds since the run (or resume) started
    alphas: dict[str, np.ndarray]   # raw α at the end of the epoch
    genotype: str                   # reference text format
    indicators: dict[str, float] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. PC-DARTS β
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
