"""The store's schema and row encoding: table and column names, the SQL statements, schema
migrations, and how records become rows (JSON, float32 blobs) and back. runs/store.py (the
RunStore) and runs/recorder.py (the Recorder a run writes through) both speak it; nothing else
should need it but the export bundles."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from ..events import EpochRecord, StepRecord
from .states import RunState, names

APPLICATION_ID = 0x44415254  # b"DART": PRAGMA application_id marks the file as ours
SCHEMA_VERSION = 4  # PRAGMA user_version; 2: runs.declaration_json; 3: metrics_json per row;
# 4: the sweeps table and each run's sweep_id / sweep_point_json (runs/sweep.py)
# Schema version -> the statements that bring a store of that version up one version.
_MIGRATIONS = {1: ["ALTER TABLE runs ADD COLUMN declaration_json TEXT NOT NULL DEFAULT '{}'"],
               2: [f"ALTER TABLE {t} ADD COLUMN metrics_json TEXT NOT NULL DEFAULT '{{}}'"
                   for t in ("step_metrics", "epoch_metrics")],
               3: ["CREATE TABLE sweeps (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                   "created_at REAL NOT NULL, spec_json TEXT NOT NULL)",
                   "ALTER TABLE runs ADD COLUMN sweep_id TEXT",
                   "ALTER TABLE runs ADD COLUMN sweep_point_json TEXT",
                   "CREATE INDEX runs_sweep ON runs (sweep_id)"]}
# Runs recorded before they declared their artifacts (schema 1): extras name -> kind, cell.
_LEGACY_ARTIFACTS = ((re.compile(r"edge_weight_(\w+)"), "edge_weights", "edge weights softmax(β)"),
                     (re.compile(r"beta_(\w+)"), "edge_logits", "β"),
                     (re.compile(r"lfr_stage"), "stage", "stage"),
                     (re.compile(r"lfr_cells_(\w+)"), "stage_cells", "cells frozen per stage"))
DB_NAME = "dartboard.db"
BUSY_TIMEOUT_S = 10.0
ACTIVE = names("active")       # someone should be writing the run (SQL `IN` tuples below)
STATUSES = names()
EXPORT_FORMATS = ("csv", "json", "parquet")
_F32 = np.dtype("<f4")  # α and extras blobs: float32 little-endian, C order
_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
SWEEP_PREFIX = "sweep-"  # a sweep id: "sweep-" + a run-id-like stamp, never a run id
_SQLITE_MAGIC = b"SQLite format 3\x00"

# --- SQL: the only place that knows table and column names ----------------------------------
# Metric columns are named like the record fields they come from (events.py); a record's task
# metrics (by name) are its row's metrics_json, and the frames read back give each its column
# (train_acc / val_acc also keep their fixed columns, which runs before schema 3 fill alone).
_STEP_COLS = ("step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "arch_lr",
              "step_time", "alpha_grad_norm", "weight_grad_norm")
_EPOCH_COLS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
               "epoch_time", "wall_time", "genotype")
_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, config_json TEXT NOT NULL,
    status TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    updated_at REAL NOT NULL, error TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '',
    n_params INTEGER, steps_per_epoch INTEGER, epochs_done INTEGER NOT NULL DEFAULT 0,
    best_val_acc REAL, last_val_acc REAL, genotype TEXT NOT NULL DEFAULT '',
    ops_json TEXT NOT NULL DEFAULT '[]', edges_json TEXT NOT NULL DEFAULT '{}', pid INTEGER,
    declaration_json TEXT NOT NULL DEFAULT '{}', sweep_id TEXT, sweep_point_json TEXT);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_sweep ON runs (sweep_id);
CREATE TABLE sweeps (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
    spec_json TEXT NOT NULL);
CREATE TABLE step_metrics (run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, lr REAL, arch_lr REAL,
    step_time REAL, alpha_grad_norm REAL, weight_grad_norm REAL,
    metrics_json TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, step));
CREATE INDEX step_metrics_epoch ON step_metrics (run_id, epoch);
CREATE TABLE epoch_metrics (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, lr REAL, epoch_time REAL,
    wall_time REAL, genotype TEXT NOT NULL, indicators_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, epoch));
CREATE TABLE alphas (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL,
    source TEXT NOT NULL, cell TEXT NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (run_id, source, cell, epoch, step));
CREATE INDEX alphas_latest ON alphas (run_id, cell, step);
CREATE TABLE extras (run_id TEXT NOT NULL, epoch INTEGER NOT NULL, name TEXT NOT NULL,
    shape_json TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, name, epoch));
CREATE TABLE logs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, ts REAL NOT NULL,
    level TEXT NOT NULL, epoch INTEGER NOT NULL, message TEXT NOT NULL);
CREATE INDEX logs_run ON logs (run_id, id);
CREATE TABLE alerts (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, epoch INTEGER NOT NULL,
    rule TEXT NOT NULL, message TEXT NOT NULL, action TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX alerts_run ON alerts (run_id, epoch)
"""
_EPOCH_TABLES = ("step_metrics", "epoch_metrics", "alphas", "extras")  # rows a resume redoes
_DELETE_RUN = [f"DELETE FROM {t} WHERE run_id = ?" for t in (*_EPOCH_TABLES, "logs", "alerts")]
_DELETE_FROM_EPOCH = [f"DELETE FROM {t} WHERE run_id = ? AND epoch >= ?" for t in _EPOCH_TABLES]
_DELETE_RUN_ROW = "DELETE FROM runs WHERE id = ?"
_RENAME = "UPDATE runs SET name = ? WHERE id = ?"
_INSERT_RUN = ("INSERT INTO runs (id, name, config_json, status, created_at, updated_at, pid, "
               "sweep_id, sweep_point_json) VALUES (:id, :name, :config, :status, :now, :now, "
               ":pid, :sweep_id, :sweep_point)")
_INSERT_WHOLE_RUN = """INSERT INTO runs (id, name, config_json, status, created_at, started_at,
    finished_at, updated_at, error, device, n_params, steps_per_epoch, epochs_done, best_val_acc,
    last_val_acc, genotype, ops_json, edges_json, pid, declaration_json) VALUES (:id, :name,
    :config, :status,
    :created_at, :started_at, :finished_at, :updated_at, :error, :device, :n_params,
    :steps_per_epoch, :epochs_done, :best_val_acc, :last_val_acc, :genotype, :ops, :edges, NULL,
    :declaration)"""
_INSERT_STEP = (f"INSERT OR REPLACE INTO step_metrics (run_id, {', '.join(_STEP_COLS)}, "
                f"metrics_json) VALUES (?, ?{', ?' * len(_STEP_COLS)})")
_INSERT_EPOCH = (f"INSERT OR REPLACE INTO epoch_metrics (run_id, {', '.join(_EPOCH_COLS)}, "
                 f"indicators_json, metrics_json) VALUES (?, ?, ?{', ?' * len(_EPOCH_COLS)})")
_INSERT_ALPHA = "INSERT OR REPLACE INTO alphas VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_EXTRA = "INSERT OR REPLACE INTO extras VALUES (?, ?, ?, ?, ?)"
_INSERT_LOG = "INSERT INTO logs (run_id, ts, level, epoch, message) VALUES (?, ?, ?, ?, ?)"
_INSERT_ALERT = ("INSERT INTO alerts (run_id, epoch, rule, message, action, ts) "
                 "VALUES (?, ?, ?, ?, ?, ?)")
_TOUCH = "UPDATE runs SET updated_at = ? WHERE id = ?"
_STARTED = """UPDATE runs SET status = 'running', started_at = :now, finished_at = NULL,
    error = '', config_json = :config, device = :device, n_params = :n_params,
    steps_per_epoch = :spe, ops_json = :ops, edges_json = :edges, pid = :pid,
    declaration_json = :declaration WHERE id = :id"""
_EXTRA_NAMES = "SELECT DISTINCT name FROM extras WHERE run_id = ? ORDER BY name"
_SUMMARY = """UPDATE runs SET epochs_done = :done,
    best_val_acc = (SELECT MAX(val_acc) FROM epoch_metrics WHERE run_id = :id),
    last_val_acc = (SELECT val_acc FROM epoch_metrics WHERE run_id = :id
                    ORDER BY epoch DESC LIMIT 1),
    genotype = COALESCE((SELECT genotype FROM epoch_metrics WHERE run_id = :id
                         ORDER BY epoch DESC LIMIT 1), '') WHERE id = :id"""
_FINISHED = """UPDATE runs SET status = :status, finished_at = :now, error = :error,
    epochs_done = :done, genotype = CASE WHEN :genotype = '' THEN genotype ELSE :genotype END
    WHERE id = :id"""
# "paused"/"stopping" are requests to a live writer: they must not overwrite the final status
# of a run that finished in the meantime.
_SET_STATUS = f"""UPDATE runs SET status = :status, error = :error,
    finished_at = CASE WHEN :final THEN COALESCE(finished_at, :now) END
    WHERE id = :id AND (:status NOT IN ('paused', 'stopping') OR status IN {ACTIVE})"""
_REQUEUE = """UPDATE runs SET status = 'queued', error = '', finished_at = NULL, pid = :pid
    WHERE id = :id"""
_INTERRUPT = f"""UPDATE runs SET status = 'interrupted', finished_at = updated_at,
    error = CASE WHEN error = '' THEN :why ELSE error END
    WHERE id = :id AND pid IS :pid AND status IN {ACTIVE}"""
_SELECT_RUN = "SELECT * FROM runs WHERE id = ?"
# --- sweeps (runs/sweep.py): a sweep row, and its runs tagged with sweep_id + their grid point
_SWEEP_RUN_COLS = ("sweep_id", "sweep_point_json")  # not part of a run as get_run gives it
_INSERT_SWEEP = "INSERT INTO sweeps (id, name, created_at, spec_json) VALUES (?, ?, ?, ?)"
_SELECT_SWEEP = "SELECT id, name, created_at, spec_json FROM sweeps WHERE id = ?"
_LIST_SWEEPS = """SELECT s.id, s.name, s.created_at, s.spec_json,
    (SELECT COUNT(*) FROM runs r WHERE r.sweep_id = s.id) AS runs FROM sweeps s
    ORDER BY s.created_at DESC, s.id DESC"""
_SWEEP_OF = "SELECT sweep_id, sweep_point_json FROM runs WHERE id = ?"
# rowid: insertion order, the order launch_sweep queued them in (created_at may tie)
_SWEEP_RUNS = """SELECT r.id, r.name, r.status, r.config_json, r.declaration_json,
    r.sweep_point_json, r.epochs_done, r.last_val_acc, r.created_at, r.error,
    (SELECT e.metrics_json FROM epoch_metrics e WHERE e.run_id = r.id
     ORDER BY e.epoch DESC LIMIT 1) AS last_metrics_json
    FROM runs r WHERE r.sweep_id = ? ORDER BY r.created_at, r.rowid"""
_SWEEP_RUN_IDS = "SELECT id, status FROM runs WHERE sweep_id = ? ORDER BY created_at, rowid"
_DELETE_SWEEP = "DELETE FROM sweeps WHERE id = ?"
_DELETE_EMPTY_SWEEP = """DELETE FROM sweeps WHERE id = :sweep
    AND NOT EXISTS (SELECT 1 FROM runs WHERE sweep_id = :sweep)"""
_CHECK_SWEEPS = "SELECT id, spec_json FROM sweeps ORDER BY id"
_CHECK_SWEEP_RUNS = """SELECT r.id, r.sweep_id, r.sweep_point_json,
    EXISTS (SELECT 1 FROM sweeps s WHERE s.id = r.sweep_id) FROM runs r
    WHERE r.sweep_id IS NOT NULL OR r.sweep_point_json IS NOT NULL ORDER BY r.id"""
_CHECK_RUNS = "SELECT id, config_json, declaration_json FROM runs ORDER BY id"
_SELECT_ACTIVE = f"SELECT id, pid FROM runs WHERE status IN {ACTIVE}"
_LIST_RUNS = """SELECT id, name, status, config_json, epochs_done, best_val_acc, created_at,
    started_at, finished_at, updated_at, error FROM runs ORDER BY created_at DESC, id DESC"""
_VERSION = """SELECT status, epochs_done,
    (SELECT MAX(step) FROM step_metrics WHERE run_id = :id), updated_at FROM runs WHERE id = :id"""
_STEPS = (f"SELECT {', '.join(_STEP_COLS)}, metrics_json FROM step_metrics WHERE run_id = :id "
          "ORDER BY step")
# Every k-th row counted back from the last, k = ceil(n / m): at most m rows, the last one kept.
# Strided reads: the step numbers alone come from the primary-key index (no table rows), the
# stride is picked in NumPy, then only the chosen rows are read by key. A window function over
# every row cost ~5x more on 20k steps, and a live page re-reads this each time a step lands.
_STEP_NUMBERS = "SELECT step FROM step_metrics WHERE run_id = ? ORDER BY step"
_STEPS_CHOSEN = (f"SELECT {', '.join(_STEP_COLS)}, metrics_json FROM step_metrics "
                 "WHERE run_id = ? AND step IN (SELECT value FROM json_each(?)) ORDER BY step")
_EPOCHS = (f"SELECT {', '.join(_EPOCH_COLS)}, indicators_json, metrics_json FROM epoch_metrics "
           "WHERE run_id = :id ORDER BY epoch")
_ALPHA_HISTORY = """SELECT epoch, step, rows, cols, data FROM alphas
    WHERE run_id = ? AND source = ? AND cell = ? ORDER BY epoch, step"""
# SQLite takes bare columns next to MAX() from the row holding the maximum; on a tie of steps
# the epoch record wins.
_LATEST_ALPHAS = """SELECT cell, rows, cols, data, MAX(2 * step + (source = 'epoch')) FROM alphas
    WHERE run_id = ? GROUP BY cell"""
_ALL_ALPHAS = """SELECT epoch, step, source, cell, rows, cols, data FROM alphas
    WHERE run_id = ? ORDER BY source, cell, epoch, step"""
_EXTRAS = """SELECT epoch, shape_json, data FROM extras WHERE run_id = ? AND name = ?
    ORDER BY epoch"""
_LOGS = """SELECT ts, level, epoch, message FROM (SELECT * FROM logs WHERE run_id = ?
    ORDER BY id DESC LIMIT ?) ORDER BY id"""
_ALERTS = "SELECT epoch, rule, message, action, ts FROM alerts WHERE run_id = ? ORDER BY id"
_GENOTYPES = "SELECT epoch, genotype FROM epoch_metrics WHERE run_id = ? ORDER BY epoch"

_LIST_COLUMNS = ["id", "name", "status", "space", "algorithm", "dataset", "epochs", "epochs_done",
                 "best_val_acc", "created_at", "started_at", "finished_at", "duration_s", "error"]
_WHOLE_RUN_KEYS = ("name", "status", "created_at", "started_at", "finished_at", "updated_at",
                   "error", "device", "n_params", "steps_per_epoch", "epochs_done",
                   "best_val_acc", "last_val_acc", "genotype")
_STEP_FLOATS = _STEP_COLS[2:]
_EPOCH_FLOATS = _EPOCH_COLS[2:-1]


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why and what to do."""


class RunNotFound(StoreError, KeyError):
    """No run with that id (it may have been deleted)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class SweepNotFound(RunNotFound):
    """No sweep with that id (it may have been deleted with its last run)."""


def _plain(value: Any) -> Any:
    """NumPy scalars -> Python scalars (sqlite3 cannot bind np.float32)."""
    return value.item() if isinstance(value, np.generic) else value


def _dumps(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, sort_keys=True, default=_plain)
    except (TypeError, ValueError) as e:
        raise StoreError(f"{what} must be JSON data (dicts, lists, numbers, strings): {e}") from e


def _alpha_rows(run_id: str, epoch: int, step: int, source: str,
                alphas: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    rows = []
    for cell, a in alphas.items():
        a = np.ascontiguousarray(a, dtype=_F32)  # (edges, ops)
        if a.ndim != 2:
            raise StoreError(f"α of cell {cell!r} must be 2-D (edges, ops), got shape {a.shape}")
        rows.append((run_id, epoch, step, source, cell, a.shape[0], a.shape[1], a.tobytes()))
    return rows


def _stack(blobs: list[bytes], shapes: list[tuple[int, ...]], empty: tuple[int, ...],
           what: str) -> np.ndarray:
    """Blobs of one shape -> a fresh float32 array (T, *shape)."""
    if not blobs:
        return np.zeros((0, *empty), np.float32)
    if len(set(shapes)) > 1:
        raise StoreError(f"{what} changes shape over the run: {sorted(set(shapes))}")
    flat = np.frombuffer(b"".join(blobs), dtype=_F32)
    return flat.reshape(len(blobs), *shapes[0]).astype(np.float32)  # copy, native byte order


def _value(ev: StepRecord | EpochRecord, column: str) -> Any:
    """A record field, or else the task metric of that name (the accuracy columns; None when
    the run's task does not declare it)."""
    return getattr(ev, column) if hasattr(ev, column) else ev.metrics.get(column)


def _expand_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """metrics_json -> one float column per metric name (NaN where a row lacks it); a name that
    is already a column (train_acc, val_acc: the fixed ones hold the same value) is left out."""
    rows = pd.DataFrame([json.loads(s) for s in df.pop("metrics_json")], index=df.index)
    rows = rows.drop(columns=[c for c in rows.columns if c in df.columns])
    return pd.concat([df, rows.astype(float)], axis=1)


def _metrics_json(df: pd.DataFrame, fixed: tuple[str, ...], declared: list[str]) -> list[str]:
    """Each row's metrics_json back from a frame `_expand_metrics` gave: its metric columns,
    plus the declared metrics that have a fixed column (train_acc, val_acc); NaN: left out."""
    names = [c for c in df.columns if c not in fixed or c in declared]
    return [_dumps({k: v for k, v in row.items() if not math.isnan(v)}, "metrics")
            for row in df[names].astype(float).to_dict("records")]


def _check_status(status: str) -> None:
    try:
        RunState.parse(status)
    except ValueError as e:
        raise StoreError(f"unknown run status {status!r}; use one of {', '.join(STATUSES)}"
                         ) from e
