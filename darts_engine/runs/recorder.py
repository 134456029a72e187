"""The Recorder: writes one run's events into the store, from the one thread running it.

Created by `RunStore.recorder(run_id)`; every write is a short store transaction (see
runs/store.py on concurrency), and an epoch is one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..events import AlertRecord, EpochRecord, Event, LogRecord, RunFinished, RunStarted, StepRecord
from .schema import (
    _DELETE_FROM_EPOCH,
    _EPOCH_COLS,
    _F32,
    _FINISHED,
    _INSERT_ALERT,
    _INSERT_ALPHA,
    _INSERT_EPOCH,
    _INSERT_EXTRA,
    _INSERT_LOG,
    _INSERT_STEP,
    _STARTED,
    _STEP_COLS,
    _SUMMARY,
    _TOUCH,
    _alpha_rows,
    _check_status,
    _dumps,
    _plain,
    _value,
)


class Recorder:
    """Writes one run's events into the store. Used by the one thread running that search.

    Step rows and step-α are buffered and written together every FLUSH_S seconds or FLUSH_ROWS
    rows (a commit per step would cost more than the step on small models); an epoch writes
    them first, inside its own transaction.
    """

    FLUSH_S = 0.5
    FLUSH_ROWS = 50

    def __init__(self, store: Any, run_id: str) -> None:  # store: the RunStore
        self.store, self.run_id = store, run_id
        self._steps: list[tuple[Any, ...]] = []
        self._alphas: list[tuple[Any, ...]] = []
        self._flushed_at = time.monotonic()

    def __call__(self, event: Event) -> None:
        match event:
            case StepRecord():
                self._step(event)
            case EpochRecord():
                self._epoch(event)
            case RunStarted():
                self._started(event)
            case LogRecord():
                with self._tx() as con:
                    con.execute(_INSERT_LOG, (self.run_id, time.time(), event.level,
                                              event.epoch, event.message))
            case AlertRecord():
                with self._tx() as con:
                    con.execute(_INSERT_ALERT, (self.run_id, event.epoch, event.rule,
                                                event.message, event.action, time.time()))
            case RunFinished():
                self._finished(event)
            case _:
                raise TypeError(f"not a run event: {type(event).__name__}")

    def flush(self) -> None:
        """Write buffered step rows now."""
        if self._steps or self._alphas:
            with self._tx(flush=True):
                pass

    def close(self) -> None:
        self.flush()

    @contextmanager
    def _tx(self, flush: bool = False) -> Iterator[sqlite3.Connection]:
        """A store transaction that heartbeats the run (failing if it was deleted) and, with
        `flush`, writes the buffered steps first. The buffer is emptied up front: a failed
        write fails the run, so there is nothing to retry."""
        steps, alphas = (self._steps, self._alphas) if flush else ([], [])
        if flush:
            self._steps, self._alphas, self._flushed_at = [], [], time.monotonic()
        with self.store._tx() as con:
            changed = con.execute(_TOUCH, (time.time(), self.run_id)).rowcount
            self.store._require(con, changed, self.run_id)
            con.executemany(_INSERT_STEP, steps)
            con.executemany(_INSERT_ALPHA, alphas)
            yield con

    def _step(self, ev: StepRecord) -> None:
        self._steps.append((self.run_id, *(_plain(_value(ev, c)) for c in _STEP_COLS),
                            _dumps(ev.metrics, "metrics")))
        if ev.alphas:
            self._alphas += _alpha_rows(self.run_id, ev.epoch, ev.step, "step", ev.alphas)
        if (len(self._steps) >= self.FLUSH_ROWS
                or time.monotonic() - self._flushed_at >= self.FLUSH_S):
            self.flush()

    def _epoch(self, ev: EpochRecord) -> None:
        row = (self.run_id, *(_plain(_value(ev, c)) for c in _EPOCH_COLS),
               _dumps(ev.indicators, "indicators"), _dumps(ev.metrics, "metrics"))
        extras = []
        for name, value in ev.extras.items():
            a = np.ascontiguousarray(value, dtype=_F32)
            extras.append((self.run_id, ev.epoch, name, json.dumps(a.shape), a.tobytes()))
        with self._tx(flush=True) as con:
            con.execute(_INSERT_EPOCH, row)
            con.executemany(_INSERT_ALPHA, _alpha_rows(self.run_id, ev.epoch, ev.step, "epoch",
                                                       ev.alphas))
            con.executemany(_INSERT_EXTRA, extras)
            con.execute(_SUMMARY, {"id": self.run_id, "done": ev.epoch + 1})

    def _started(self, ev: RunStarted) -> None:
        """Also drops rows from start_epoch on: a resumed run redoes those epochs."""
        params = {"id": self.run_id, "now": time.time(), "config": _dumps(ev.config, "config"),
                  "device": ev.device, "n_params": ev.n_params, "spe": ev.steps_per_epoch,
                  "ops": json.dumps(list(ev.ops)),
                  "edges": json.dumps({k: list(v) for k, v in ev.edges.items()}),
                  "pid": os.getpid(),
                  "declaration": _dumps({"task": ev.task, "metrics": list(ev.metrics),
                                         "artifacts": list(ev.artifacts)}, "declaration")}
        self._steps, self._alphas = [], []
        with self._tx() as con:
            for sql in _DELETE_FROM_EPOCH:
                con.execute(sql, (self.run_id, ev.start_epoch))
            con.execute(_STARTED, params)
            con.execute(_SUMMARY, {"id": self.run_id, "done": ev.start_epoch})

    def _finished(self, ev: RunFinished) -> None:
        _check_status(ev.status)
        with self._tx(flush=True) as con:
            con.execute(_FINISHED, {"id": self.run_id, "status": ev.status, "now": time.time(),
                                    "error": ev.error, "done": ev.epochs_done,
                                    "genotype": ev.genotype})
