"""The search loop: one loop for every algorithm, reporting plain-data events.

`search(config, on_event=..., control=...)` builds the supernet on the configured device, runs
the registered update rule step by step, checks `control` between steps (stop / pause), and
after every epoch asks the run's task to evaluate the held-out split (tasks/), derives the genotype, writes a checkpoint (when
given a folder) and reports an `EpochRecord`. Order within an epoch follows quark0's
cnn/train_search.py `main` / `train` (the α-then-w order within a step is the config's
`step_order`, see algorithms.py); the cosine lr is computed explicitly per epoch (`cosine_lr`).
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ConfigError, SearchConfig
from .events import NAN, EpochRecord, Event, LogRecord, RunFinished, RunStarted, StepRecord
from .monitor.tracker import IndicatorTracker
from .train.algorithms import StepStats
from .train.checkpoint import load_checkpoint, save_checkpoint
from .train.setup import (  # noqa: F401
    SearchSetup,
    alphas_numpy,
    build_search,
    current_genotype,
    make_optimisers,
    resolve_device,
)

CHECKPOINT_NAME = "checkpoint.pt"


def check_resumable(checkpoint_dir: str | Path, epochs_done: int) -> None:
    """Raise ConfigError when a run with recorded epochs has no checkpoint to continue from (an
    imported run, or its folder was removed): `search(resume=True)` would start again at epoch
    0, and the store would drop the recorded epochs."""
    if epochs_done > 0 and not (Path(checkpoint_dir) / CHECKPOINT_NAME).is_file():
        raise ConfigError(f"this run has {epochs_done} recorded epoch(s) but no checkpoint to "
                          "continue from (imported runs carry none), so it cannot be resumed. "
                          "Launch a new run with its config instead.", field="run")


class StopSearch(Exception):
    """Raised inside the loop when the control object asks to stop."""


class NonFiniteLoss(RuntimeError):
    pass


class SearchControl:
    """Thread-safe stop / pause / resume flags, checked by the loop between steps."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._held = threading.Event()  # set while the loop is actually waiting in a pause

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_held(self, timeout: float) -> bool:
        """Wait until the loop has reached the pause (the step in flight has finished)."""
        return self._held.wait(timeout)

    def checkpoint(self) -> None:
        """Block while paused; raise StopSearch if a stop was requested."""
        if not self._running.is_set():
            self._held.set()
            while not self._running.wait(0.1):
                pass
            self._held.clear()
        if self._stop.is_set():
            raise StopSearch


@dataclass
class SearchResult:
    status: str                      # completed | stopped | failed
    epochs_done: int
    genotype: str
    alphas: dict[str, np.ndarray]
    error: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch metrics


def cosine_lr(cfg: SearchConfig, epoch: int) -> float:
    """lr(e) = η_min + ½(η_max − η_min)(1 + cos(π e / E)), evaluated at the start of epoch e.

    The same in both step orders. quark0 cnn/train_search.py steps torch's CosineAnnealingLR
    once per epoch (its logged lr is 0.025 at epoch 0). AutoDL's NAS-Bench-201 scripts call
    `w_scheduler.update(epoch, 0.0)` per epoch and `scheduler.update(None, step / len(loader))`
    per iteration, but their `CosineAnnealingLR.get_lr` (xautodl/procedures/optimizers.py)
    reads the iteration only inside a warm-up, and DARTS.config has warmup 0: the lr is this
    per-epoch cosine there too (T_max = epochs = 50, eta_min 0.001).
    """
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs))


def _float(t: torch.Tensor | None) -> float:
    return NAN if t is None else float(t)


def _declared(s: SearchSetup) -> dict[str, float]:
    """Every declared metric, NaN until a batch or the evaluation gives it a value."""
    return {m["name"]: NAN for m in s.task.metrics}


def _emit(on_event: Callable[[Event], None] | None, event: Event) -> None:
    if on_event is not None:
        on_event(event)


def _checkpoint_state(s: SearchSetup, next_epoch: int, step: int, wall: float,
                      history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": 1, "next_epoch": next_epoch, "step": step, "wall_time": wall,
        "config": s.cfg.to_dict(), "model": s.model.state_dict(),
        "w_opt": s.ctx.w_opt.state_dict(), "a_opt": s.ctx.a_opt.state_dict(),
        "method": s.method.state_dict(), "task": dict(s.task_state),
        "torch_rng": torch.get_rng_state(), "history": history,
    }


def search(cfg: SearchConfig, on_event: Callable[[Event], None] | None = None,
           control: SearchControl | None = None, *, checkpoint_dir: str | Path | None = None,
           resume: bool = False, setup: SearchSetup | None = None) -> SearchResult:
    """Run a search to the end, a stop request, or a failure. Never raises for run failures:
    those come back as status "failed" (and a RunFinished event) with the reason."""
    control = control or SearchControl()
    epoch, step, wall_offset = 0, 0, 0.0
    history: list[dict[str, Any]] = []
    alphas: dict[str, np.ndarray] = {}
    genotype = ""
    try:
        s = setup or build_search(cfg)
        ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
        if resume and ckpt_path is not None and ckpt_path.exists():
            state = load_checkpoint(ckpt_path, map_location=s.device)
            s.model.load_state_dict(state["model"])
            s.method.load_state_dict(s, state.get("method", {}))  # may rebuild the optimisers
            s.task_state.update(state.get("task", {}))
            s.ctx.w_opt.load_state_dict(state["w_opt"])
            s.ctx.a_opt.load_state_dict(state["a_opt"])
            torch.set_rng_state(state["torch_rng"])
            epoch, step, wall_offset = state["next_epoch"], state["step"], state["wall_time"]
            history = list(state["history"])
        alphas = alphas_numpy(s.model)
        genotype = current_genotype(s, alphas)
        _emit(on_event, RunStarted(
            s.cfg.to_dict(), str(s.device), s.model.n_weight_params(),
            s.data.train.steps_per_epoch, s.space.ops,
            {t: s.space.edge_labels_of(t) for t in s.space.cell_types}, start_epoch=epoch,
            task=s.cfg.task, metrics=tuple(dict(m) for m in s.task.metrics),
            artifacts=(*map(dict, s.task.artifacts), *map(dict, s.method.artifacts()))))
        tracker = IndicatorTracker(s, history, alphas, genotype)  # collapse indicators, alerts
        t_start = time.perf_counter() - wall_offset
        while epoch < s.cfg.epochs:
            epoch_stats = _run_epoch(s, epoch, step, tracker.listen(on_event), control)
            step += s.data.train.steps_per_epoch
            alphas = alphas_numpy(s.model)
            genotype = current_genotype(s, alphas)
            val_loss, held_metrics = s.task.evaluate(s.model, s.data)
            metrics = {**_declared(s), **epoch_stats["metrics"], **held_metrics}
            metrics.update(s.task.end_epoch(s, epoch, metrics))
            indicators, alerts = tracker.epoch(epoch, alphas, genotype, metrics)
            wall = time.perf_counter() - t_start
            record = EpochRecord(
                epoch=epoch, step=step, train_loss=epoch_stats["train_loss"], val_loss=val_loss,
                lr=s.ctx.lr, epoch_time=time.perf_counter() - epoch_stats["t0"],
                wall_time=wall, alphas=alphas, genotype=genotype, metrics=metrics,
                indicators=indicators, extras={**s.task.epoch_artifacts(s), **s.method.extras(s)})
            history.append({"epoch": epoch, "train_loss": record.train_loss,
                            "val_loss": val_loss, **metrics, "genotype": genotype,
                            "indicators": indicators})
            epoch += 1
            if ckpt_path is not None:
                save_checkpoint(ckpt_path, _checkpoint_state(s, epoch, step, wall, history))
            _emit(on_event, record)
            for alert in alerts:
                _emit(on_event, alert)
            if tracker.stop is not None:  # alert_action="stop": end with the earlier genotype
                genotype = tracker.stop.genotype
                _emit(on_event, LogRecord(tracker.stop.message, epoch=record.epoch))
                raise StopSearch
        status, error = "completed", ""
    except StopSearch:
        status, error = "stopped", ""
    except Exception as e:  # a failing run must never take the caller down
        status, error = "failed", _describe_failure(e)
        _emit_safely(on_event, LogRecord(traceback.format_exc(), level="error", epoch=epoch))
    finished = RunFinished(status, epoch, genotype, error)
    _emit_safely(on_event, finished)
    return SearchResult(status, epoch, genotype, alphas, error, history)


def _emit_safely(on_event: Callable[[Event], None] | None, event: Event) -> None:
    try:
        _emit(on_event, event)
    except Exception:  # the recorder itself failed; nothing more we can report through it
        pass


def _describe_failure(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower():
        return ("the GPU ran out of memory. Use a smaller batch_size or init_channels, fewer "
                f"cells, or PC-DARTS (partial channels). ({text})")
    return text


def _run_epoch(s: SearchSetup, epoch: int, step0: int,
               on_event: Callable[[Event], None] | None, control: SearchControl
               ) -> dict[str, float]:
    """Train one epoch; returns its mean train loss, the mean of each train-split metric over
    its steps ("metrics") and its start time."""
    cfg, ctx = s.cfg, s.ctx
    ctx.lr = cosine_lr(cfg, epoch)
    for group in ctx.w_opt.param_groups:
        group["lr"] = ctx.lr
    ctx.update_alpha = epoch >= cfg.warmup_epochs
    for event in s.method.begin_epoch(s, epoch):  # e.g. LFR-DARTS' stage change, ε ramps
        _emit(on_event, event)
    n_steps = s.data.train.steps_per_epoch
    train_it = s.data.train.epoch(epoch)
    held_it = (s.data.held_out.epoch(epoch, n_batches=n_steps)
               if s.algorithm.uses_held_out else None)
    s.model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=s.device)
    metric_sums: dict[str, torch.Tensor] = {}
    arch_lr = ctx.a_opt.param_groups[0]["lr"]
    for k in range(n_steps):
        control.checkpoint()
        # Search progress 0 -> 1 over the epochs, at the end of this step: read by scheduled
        # relaxations (sparsestmax's radius, relaxations.py), so the last step and the final
        # derivation and evaluation see progress 1.
        s.model.progress = (epoch + (k + 1) / n_steps) / cfg.epochs
        train = next(train_it)
        held = next(held_it) if held_it is not None else None
        t_step = time.perf_counter()
        stats: StepStats = s.algorithm.step(ctx, train, held)
        if s.device.type == "cuda":
            torch.cuda.synchronize(s.device)
        dt = time.perf_counter() - t_step
        loss_sum += stats.train_loss
        for name, value in stats.train_metrics.items():
            metric_sums[name] = metric_sums.get(name, 0.0) + value
        step = step0 + k + 1
        if step % cfg.log_every == 0 or k == n_steps - 1:
            train_loss = float(stats.train_loss)
            if not math.isfinite(train_loss):
                raise NonFiniteLoss(
                    f"training loss became {train_loss} at epoch {epoch}, step {step}; lower "
                    f"lr / arch_lr or keep grad_clip on")
            record_alphas = cfg.alpha_every and step % cfg.alpha_every == 0
            _emit(on_event, StepRecord(
                epoch=epoch, step=step, train_loss=train_loss, val_loss=_float(stats.val_loss),
                metrics={**_declared(s), **{k: float(v) for k, v in stats.train_metrics.items()},
                         **{k: float(v) for k, v in stats.val_metrics.items()}}, lr=ctx.lr,
                arch_lr=arch_lr if ctx.update_alpha else 0.0, step_time=dt,
                alpha_grad_norm=_float(stats.alpha_grad_norm),
                weight_grad_norm=_float(stats.weight_grad_norm),
                alphas=alphas_numpy(s.model) if record_alphas else None))
    mean_loss = float(loss_sum) / n_steps
    if not math.isfinite(mean_loss):
        raise NonFiniteLoss(f"training loss became {mean_loss} in epoch {epoch}; lower lr / "
                            f"arch_lr or keep grad_clip on")
    return {"train_loss": mean_loss, "t0": t0,
            "metrics": {k: float(v) / n_steps for k, v in metric_sums.items()}}
