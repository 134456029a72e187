"""The durable run store: one SQLite file with every run's config, metrics, α, logs and alerts.

Layout: `home/dartboard.db` (this module) and one folder `home/<run_id>/` per run for its
checkpoints (see train/checkpoint.py). The search thread writes through a `Recorder`
(runs/recorder.py); the tables, statements and row encoding are runs/schema.py. The dashboard's
reader threads get copies (DataFrames, NumPy arrays, dicts) and never see a connection.

Concurrency: the journal is WAL, so readers never block the writer and only ever see committed
transactions. An epoch (metrics + α of every cell + extras + the run's summary) is one
transaction, so no reader sees half an epoch. Each thread has its own connection; writes from
this process queue on one lock per database file, and another process (the CLI) waits on
SQLite's busy timeout, which is why every transaction is short.

Over 400 lines for a reason: `RunStore` is the one class that opens, migrates, queries and
changes the database, and its transaction rules (above) hold across all of it; the SQL text
lives in schema.py and the write path of a running search in recorder.py.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import FIELDS
from ..events import (
    artifact,
)
from ..registries import TASKS
from .recorder import Recorder
from .schema import (
    _ALERTS,
    _ALL_ALPHAS,
    _ALPHA_HISTORY,
    _CHECK_RUNS,
    _CHECK_SWEEP_RUNS,
    _CHECK_SWEEPS,
    _DELETE_EMPTY_SWEEP,
    _DELETE_RUN,
    _DELETE_RUN_ROW,
    _DELETE_SWEEP,
    _EPOCH_COLS,
    _EPOCH_FLOATS,
    _EPOCHS,
    _EXTRA_NAMES,
    _EXTRAS,
    _F32,
    _GENOTYPES,
    _INSERT_ALERT,
    _INSERT_ALPHA,
    _INSERT_EPOCH,
    _INSERT_LOG,
    _INSERT_RUN,
    _INSERT_STEP,
    _INSERT_SWEEP,
    _INSERT_WHOLE_RUN,
    _INTERRUPT,
    _LATEST_ALPHAS,
    _LEGACY_ARTIFACTS,
    _LIST_COLUMNS,
    _LIST_RUNS,
    _LIST_SWEEPS,
    _LOGS,
    _MIGRATIONS,
    _RENAME,
    _REQUEUE,
    _RUN_ID,
    _SCHEMA,
    _SELECT_ACTIVE,
    _SELECT_RUN,
    _SELECT_SWEEP,
    _SET_STATUS,
    _SQLITE_MAGIC,
    _STEP_COLS,
    _STEP_FLOATS,
    _STEP_NUMBERS,
    _STEPS,
    _STEPS_CHOSEN,
    _SWEEP_OF,
    _SWEEP_RUN_COLS,
    _SWEEP_RUN_IDS,
    _SWEEP_RUNS,
    _TOUCH,
    _VERSION,
    _WHOLE_RUN_KEYS,
    APPLICATION_ID,
    BUSY_TIMEOUT_S,
    DB_NAME,
    EXPORT_FORMATS,
    SCHEMA_VERSION,
    SWEEP_PREFIX,
    RunNotFound,
    StoreError,
    SweepNotFound,
    _alpha_rows,
    _check_status,
    _dumps,
    _expand_metrics,
    _metrics_json,
    _plain,
    _stack,
)
from .states import RunState


def default_home() -> Path:
    """The store folder: $DARTBOARD_HOME, else ./runs."""
    return Path(os.environ.get("DARTBOARD_HOME") or "runs")


def new_run_id(now: float | None = None) -> str:
    """`YYYYMMDD-HHMMSS-xxxx` in UTC (sorts by creation time; local time would jump at DST)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so `RunStore.close` can find every thread's."""


_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    # One per file for the whole process: two RunStore objects on one file (the dashboard's and
    # a worker's) then queue here instead of polling in SQLite's busy handler.
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path, threading.Lock())


def _refuse(path: Path, why: str) -> StoreError:
    return StoreError(f"{path} {why}. DARTboard leaves it untouched: move it away or set "
                      "DARTBOARD_HOME to another folder.")


def _inspect(path: Path) -> None:
    """Raise unless `path` is absent, empty, or a DARTboard database. Never writes to it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _refuse(path, "is not an SQLite database (or is corrupt)")
    # Offset 68 holds application_id. Ours is written before WAL is switched on, so the file
    # header always has it.
    app_id = int.from_bytes(header[68:72], "big")
    if app_id == APPLICATION_ID:
        return
    if app_id != 0:
        raise _refuse(path, f"belongs to another application (application_id {app_id:#x})")
    try:  # read-only: a read-write close could checkpoint a foreign WAL into the file
        ro = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            n_objects = ro.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            ro.close()
    except sqlite3.DatabaseError as e:
        raise _refuse(path, f"cannot be read as a database ({e})") from e
    if n_objects:
        raise _refuse(path, "is an SQLite database of another application")


def _init_schema(con: sqlite3.Connection, path: Path) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if app_id == 0 and not con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            for statement in _SCHEMA.split(";"):
                con.execute(statement)
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif app_id != APPLICATION_ID:
            raise _refuse(path, "is an SQLite database of another application")
        elif version in _MIGRATIONS:
            while version < SCHEMA_VERSION:  # a store of an older version, brought up once
                for statement in _MIGRATIONS[version]:
                    con.execute(statement)
                version += 1
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise _refuse(path, f"has DARTboard schema version {version}; this version "
                                f"reads {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        con.execute("PRAGMA journal_mode = WAL")


def _is_object(text: str | None) -> bool:
    """True when `text` is a JSON object."""
    try:
        return isinstance(json.loads(text), dict)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # kill(0, ...) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _writer_alive(run_id: str, pid: int | None, live_ids: set[str] | frozenset[str]) -> bool:
    if pid == os.getpid():  # our own process: only the caller knows which runs it still runs
        return run_id in live_ids
    return pid is not None and _pid_alive(pid)  # (a recycled pid reads as alive; rare)


def _inside(out_dir: str | Path, allowed_root: str | Path | None) -> Path:
    """`out_dir` resolved (relative to `allowed_root` when given), refusing escapes from it."""
    if allowed_root is None:
        return Path(out_dir).expanduser().resolve()
    root = Path(allowed_root).expanduser().resolve()
    target = (root / out_dir).resolve()  # follows symlinks and "..", absolute paths win
    if not target.is_relative_to(root):
        raise StoreError(f"export folder {str(out_dir)!r} resolves to {target}, outside the "
                         f"allowed folder {root}; choose a folder inside it")
    return target


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Write via a temp file in the same folder: readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_WRITERS: dict[str, Callable[[pd.DataFrame, Path], Any]] = {
    "csv": lambda df, p: df.to_csv(p, index=False),
    "json": lambda df, p: df.to_json(p, orient="records", double_precision=15),
    "parquet": lambda df, p: df.to_parquet(p, index=False),
}


class RunStore:
    """All runs under one folder. Safe to share between threads; reads return copies."""

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home).expanduser().resolve()
        if self.home.exists() and not self.home.is_dir():
            raise StoreError(f"{self.home} is a file, not a folder; set DARTBOARD_HOME to a folder")
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / DB_NAME
        _inspect(self.path)
        self._lock = _write_lock(self.path)
        self._local = threading.local()
        self._cons: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._cons_lock = threading.Lock()
        try:
            with self._lock:
                _init_schema(self._con(), self.path)
        except (sqlite3.DatabaseError, StoreError) as e:
            self.close()
            if isinstance(e, StoreError):
                raise
            raise _refuse(self.path, f"cannot be opened ({e})") from e

    # --- connections and transactions ----------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                  check_same_thread=False, factory=_Connection)
            # WAL + NORMAL: a power cut may lose the last commits but never corrupts the file.
            con.execute("PRAGMA synchronous = NORMAL")
            self._local.con = con
            with self._cons_lock:
                self._cons.add(con)
        return con

    def close(self) -> None:
        """Close every thread's connection (call when no thread uses the store any more)."""
        with self._cons_lock:
            for con in list(self._cons):
                con.close()
            self._cons.clear()
        self._local = threading.local()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction. IMMEDIATE takes SQLite's write lock up front: a deferred
        transaction that upgrades later can fail with SQLITE_BUSY without waiting."""
        con = self._con()
        with self._lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads inside see one consistent state of the database (used by export)."""
        con = self._con()
        con.execute("BEGIN")
        try:
            yield
        finally:
            con.execute("COMMIT")

    def _frame(self, sql: str, params: Any, floats: tuple[str, ...] = ()) -> pd.DataFrame:
        cur = self._con().execute(sql, params)
        df = pd.DataFrame.from_records(cur.fetchall(), columns=[d[0] for d in cur.description])
        # NaN is stored as NULL; an all-NULL column would come back as dtype object.
        return df.astype({c: float for c in floats})

    def _require(self, con: sqlite3.Connection, changed: int, run_id: str) -> None:
        if changed == 0 and con.execute(_SELECT_RUN, (run_id,)).fetchone() is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}; it may have been deleted")

    # --- runs ----------------------------------------------------------------------------
    def create_run(self, config: dict[str, Any], name: str = "", status: str = "queued", *,
                   sweep_id: str | None = None, sweep_point: dict[str, Any] | None = None) -> str:
        """A new run row; its pid is this process, which is expected to run it. sweep_id and
        sweep_point (its grid point, without the seed) tag a run of a sweep (`create_sweep`)."""
        _check_status(status)
        if (sweep_id is None) != (sweep_point is None):
            raise StoreError("a sweep run needs both its sweep_id and its sweep_point")
        params = {"name": str(name), "config": _dumps(config, "config"), "status": status,
                  "now": time.time(), "pid": os.getpid(), "sweep_id": sweep_id,
                  "sweep_point": None if sweep_point is None else _dumps(sweep_point, "point")}
        with self._tx() as con:
            if sweep_id is not None and con.execute(_SELECT_SWEEP, (sweep_id,)).fetchone() is None:
                raise SweepNotFound(f"no sweep {sweep_id!r} in {self.path}; create it first")
            run_id = new_run_id(params["now"])
            while con.execute(_SELECT_RUN, (run_id,)).fetchone():
                run_id = new_run_id(params["now"])
            con.execute(_INSERT_RUN, {**params, "id": run_id})
        return run_id

    def add_run(self, run: dict[str, Any], steps: pd.DataFrame, epochs: pd.DataFrame,
                alphas: list[tuple[int, int, str, str, np.ndarray]], alerts: pd.DataFrame,
                note: str = "") -> str:
        """Insert a whole finished run in one transaction: an imported bundle (bundle.py checks
        it first). `run` is shaped as get_run returns it, the frames as step_metrics,
        epoch_metrics (indicators as ind_<name> columns) and alerts return them; α as
        (epoch, step, source, cell, raw α (edges, ops)). Keeps run["id"] unless that id or its
        folder is taken, then picks a new one; returns the id. `note`: one info log line."""
        if not RunState.parse(run["status"]).final:
            raise StoreError(f"only a finished run can be added, got status {run['status']!r}")
        ind = [c for c in epochs.columns if c.startswith("ind_")]
        indicators = [_dumps({c[len("ind_"):]: row[c] for c in ind}, "indicators")
                      for row in epochs[ind].to_dict("records")]
        declared = [m["name"] for m in run.get("metrics") or ()]
        step_metrics = _metrics_json(steps, _STEP_COLS, declared)
        epoch_metrics = _metrics_json(epochs, (*_EPOCH_COLS, *ind), declared)
        params = {**{k: run[k] for k in _WHOLE_RUN_KEYS},
                  "config": _dumps(run["config"], "config"), "ops": json.dumps(list(run["ops"])),
                  "edges": json.dumps({k: list(v) for k, v in run["edges"].items()}),
                  "declaration": _dumps({k: run[k] for k in ("task", "metrics", "artifacts")}
                                        if run.get("task") else {}, "declaration")}
        with self._tx() as con:
            run_id = run["id"]
            # A leftover folder of that id could hold another run's checkpoint: avoid it too.
            while (con.execute(_SELECT_RUN, (run_id,)).fetchone()
                   or (self.home / run_id).exists()):
                run_id = new_run_id(run["created_at"])
            con.execute(_INSERT_WHOLE_RUN, {**params, "id": run_id})
            con.executemany(_INSERT_STEP, [
                (run_id, *map(_plain, r), m) for r, m in
                zip(steps[list(_STEP_COLS)].itertuples(index=False), step_metrics, strict=True)])
            con.executemany(_INSERT_EPOCH, [
                (run_id, *map(_plain, r), ind_json, m) for r, ind_json, m in
                zip(epochs[list(_EPOCH_COLS)].itertuples(index=False), indicators, epoch_metrics,
                    strict=True)])
            for epoch, step, source, cell, a in alphas:
                con.executemany(_INSERT_ALPHA, _alpha_rows(run_id, epoch, step, source, {cell: a}))
            con.executemany(_INSERT_ALERT, [(run_id, *map(_plain, r)) for r in alerts[
                ["epoch", "rule", "message", "action", "ts"]].itertuples(index=False)])
            if note:
                con.execute(_INSERT_LOG, (run_id, time.time(), "info", run["epochs_done"], note))
        return run_id

    def run_dir(self, run_id: str) -> Path:
        """The run's folder for checkpoints, created on first use."""
        if not _RUN_ID.fullmatch(run_id):
            raise StoreError(f"{run_id!r} is not a run id (YYYYMMDD-HHMMSS-xxxx)")
        folder = self.home / run_id
        folder.mkdir(exist_ok=True)
        return folder

    def recorder(self, run_id: str) -> Recorder:
        self.get_run(run_id)  # fail now, not at the first event
        return Recorder(self, run_id)

    def set_status(self, run_id: str, status: str, error: str = "") -> bool:
        """Returns False when a paused/stopping request came after the run had finished."""
        _check_status(status)
        params = {"id": run_id, "status": status, "error": error, "now": time.time(),
                  "final": RunState(status).final}
        with self._tx() as con:
            changed = con.execute(_SET_STATUS, params).rowcount
            self._require(con, changed, run_id)
        return bool(changed)

    def requeue(self, run_id: str) -> None:
        """Queue a finished run again (a resume) for this process to run. The pid becomes ours:
        kept as the dead pid of its last writer, mark_interrupted would take the queued run
        for an orphan and mark it interrupted again before it starts."""
        with self._tx() as con:
            changed = con.execute(_REQUEUE, {"id": run_id, "pid": os.getpid()}).rowcount
            self._require(con, changed, run_id)

    def heartbeat(self, run_id: str) -> None:
        with self._tx() as con:
            self._require(con, con.execute(_TOUCH, (time.time(), run_id)).rowcount, run_id)

    def rename_run(self, run_id: str, name: str) -> None:
        with self._tx() as con:
            self._require(con, con.execute(_RENAME, (str(name), run_id)).rowcount, run_id)

    def delete_run(self, run_id: str) -> None:
        """Delete the run's rows in every table, then its folder. A sweep run's sweep stays
        while it has other runs; deleting its last run deletes the sweep too."""
        with self._tx() as con:
            sweep = con.execute(_SWEEP_OF, (run_id,)).fetchone()
            for sql in _DELETE_RUN:
                con.execute(sql, (run_id,))
            self._require(con, con.execute(_DELETE_RUN_ROW, (run_id,)).rowcount, run_id)
            if sweep is not None and sweep[0] is not None:  # its last run gone: so is the sweep
                con.execute(_DELETE_EMPTY_SWEEP, {"sweep": sweep[0]})
        folder = self.home / run_id
        if _RUN_ID.fullmatch(run_id) and folder.is_dir():  # never a path built from other text
            shutil.rmtree(folder)

    def mark_interrupted(self, live_ids: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Active runs whose writer is gone become "interrupted". `live_ids`: the runs this
        process is running (or has queued); this process's other runs count as gone."""
        gone = [(run_id, pid) for run_id, pid in self._con().execute(_SELECT_ACTIVE).fetchall()
                if not _writer_alive(run_id, pid, live_ids)]
        marked = []  # the update re-checks status and pid: the run may have moved on meanwhile
        with self._tx() as con:
            for run_id, pid in gone:
                why = f"the process that ran it (pid {pid}) is gone"
                if con.execute(_INTERRUPT, {"id": run_id, "pid": pid, "why": why}).rowcount:
                    marked.append(run_id)
        return marked

    def check(self) -> list[str]:
        """What is wrong with the store, one line each (empty: nothing): SQLite's quick_check,
        then every run whose config or declaration is not valid JSON (a dict), every sweep whose
        spec is not, and every sweep run whose sweep is missing or whose point is not a dict."""
        con = self._con()
        problems = [r[0] for r in con.execute("PRAGMA quick_check") if r[0] != "ok"]
        for run_id, *texts in con.execute(_CHECK_RUNS):
            for what, text in zip(("config_json", "declaration_json"), texts, strict=True):
                try:
                    ok = isinstance(json.loads(text), dict)
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    problems.append(f"run {run_id}: {what} is not valid JSON (a JSON object); "
                                    f"delete the run or import it again from its bundle")
        for sweep_id, text in con.execute(_CHECK_SWEEPS):
            if not _is_object(text):
                problems.append(f"sweep {sweep_id}: spec_json is not valid JSON (a JSON "
                                f"object); delete the sweep")
        for run_id, sweep_id, point, sweep_exists in con.execute(_CHECK_SWEEP_RUNS):
            if sweep_id is None or not sweep_exists:
                problems.append(f"run {run_id}: tagged with sweep {sweep_id!r}, which is not "
                                f"in the store; delete the run")
            elif not _is_object(point):
                problems.append(f"run {run_id}: sweep_point_json is not valid JSON (a JSON "
                                f"object); delete the run")
        return problems

    # --- sweeps (runs/sweep.py builds, validates and launches them) ------------------------
    def create_sweep(self, spec: dict[str, Any], name: str = "") -> str:
        """A new sweep row holding its spec (JSON data: SweepSpec.to_dict()); its runs are
        tagged with its id by `create_run(..., sweep_id=, sweep_point=)`. Returns the id."""
        now = time.time()
        spec_json = _dumps(spec, "sweep spec")
        with self._tx() as con:
            sweep_id = SWEEP_PREFIX + new_run_id(now)
            while con.execute(_SELECT_SWEEP, (sweep_id,)).fetchone():
                sweep_id = SWEEP_PREFIX + new_run_id(now)
            con.execute(_INSERT_SWEEP, (sweep_id, str(name), now, spec_json))
        return sweep_id

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """{id, name, created_at, spec} of one sweep."""
        row = self._con().execute(_SELECT_SWEEP, (sweep_id,)).fetchone()
        if row is None:
            raise SweepNotFound(f"no sweep {sweep_id!r} in {self.path}; it may have been "
                                "deleted with its last run")
        return {"id": row[0], "name": row[1], "created_at": row[2], "spec": json.loads(row[3])}

    def list_sweeps(self) -> pd.DataFrame:
        """One row per sweep, newest first: id, name, created_at, spec (a dict), runs (count)."""
        df = self._frame(_LIST_SWEEPS, (), ("created_at",))
        df["spec"] = [json.loads(s) for s in df.pop("spec_json")]
        return df[["id", "name", "created_at", "spec", "runs"]]

    def sweep_of(self, run_id: str) -> dict[str, Any] | None:
        """{sweep_id, point} of a sweep run; None for a run of no sweep."""
        row = self._con().execute(_SWEEP_OF, (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}; it may have been deleted")
        return None if row[0] is None else {"sweep_id": row[0], "point": json.loads(row[1])}

    def sweep_runs(self, sweep_id: str) -> pd.DataFrame:
        """The sweep's runs in launch order: id, name, status, point (the grid point, a dict),
        seed, epochs_done, epochs, headline (the metric's name) and headline_value (its value
        at the last recorded epoch; NaN before one), error."""
        self.get_sweep(sweep_id)  # SweepNotFound rather than an empty frame
        rows = []
        for (run_id, name, status, config_json, declaration_json, point_json, done, last_val,
             _, error, last_metrics) in self._con().execute(_SWEEP_RUNS, (sweep_id,)):
            config = json.loads(config_json)
            declared = self._declaration(run_id, config, json.loads(declaration_json))
            headline = next((m["name"] for m in declared["metrics"] if m.get("headline")), "")
            last = json.loads(last_metrics) if last_metrics else {}
            value = last.get(headline, last_val if headline == "val_acc" else None)
            rows.append({"id": run_id, "name": name, "status": status,
                         "point": json.loads(point_json), "seed": config.get("seed"),
                         "epochs_done": done, "epochs": config.get("epochs"),
                         "headline": headline,
                         "headline_value": math.nan if value is None else float(value),
                         "error": error})
        columns = ["id", "name", "status", "point", "seed", "epochs_done", "epochs", "headline",
                   "headline_value", "error"]
        return pd.DataFrame(rows, columns=columns).astype({"headline_value": float})

    def delete_sweep(self, sweep_id: str) -> None:
        """Delete the sweep and every run of it (rows and folders). Refused while one of its
        runs is active: stop them first (runs/sweep.py delete_sweep goes through the manager)."""
        self.get_sweep(sweep_id)
        runs = self._con().execute(_SWEEP_RUN_IDS, (sweep_id,)).fetchall()
        if live := [run_id for run_id, status in runs if RunState(status).active]:
            raise StoreError(f"sweep {sweep_id} still has active runs ({', '.join(live)}); "
                             "stop them first, then delete the sweep")
        for run_id, _ in runs:
            self.delete_run(run_id)
        with self._tx() as con:
            con.execute(_DELETE_SWEEP, (sweep_id,))

    # --- reads ---------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run row as a dict; config, ops and edges parsed. Times are Unix seconds."""
        cur = self._con().execute(_SELECT_RUN, (run_id,))
        row = cur.fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}; it may have been deleted")
        run = dict(zip([d[0] for d in cur.description], row, strict=True))
        for key in _SWEEP_RUN_COLS:  # a sweep run exports as an ordinary run: see sweep_of
            run.pop(key)
        for key in ("config", "ops", "edges"):
            run[key] = json.loads(run.pop(f"{key}_json"))
        stored = json.loads(run.pop("declaration_json"))
        run.update(self._declaration(run_id, run["config"], stored))
        return run

    def _declaration(self, run_id: str, config: dict[str, Any],
                     stored: dict[str, Any]) -> dict[str, Any]:
        """task, metrics, artifacts as the run declared them; for a run recorded before runs
        declared them: the config's task (the default one where the config has none), its
        metrics, and the artifacts the stored extras names show."""
        if stored.get("task"):
            return {k: stored[k] for k in ("task", "metrics", "artifacts")}
        task = config.get("task") or FIELDS["task"].default
        metrics = [dict(m) for m in TASKS.get(task).metrics] if task in TASKS else []
        artifacts = []
        for (name,) in self._con().execute(_EXTRA_NAMES, (run_id,)):
            for pattern, kind, label in _LEGACY_ARTIFACTS:
                if (m := pattern.fullmatch(name)) is not None:
                    cell = m.group(1) if m.groups() else None
                    artifacts.append(artifact(name, kind, label + (f", {cell} cell" if cell
                                                                   else ""), cell=cell))
                    break
        return {"task": task, "metrics": metrics, "artifacts": artifacts}

    def declarations(self) -> dict[str, dict[str, Any]]:
        """run id -> its config, task, metrics and artifacts (as `get_run` gives them), for every
        run in one read: the listing's companion, so a page need not call get_run per run."""
        out = {}
        for run_id, config_json, declaration_json in self._con().execute(_CHECK_RUNS):
            config = json.loads(config_json)
            out[run_id] = {"config": config, **self._declaration(run_id, config,
                                                                  json.loads(declaration_json))}
        return out

    def list_runs(self) -> pd.DataFrame:
        """One row per run, newest first. Times are Unix seconds; duration_s runs to the
        finish or, while running, to the last heartbeat."""
        floats = ("best_val_acc", "created_at", "started_at", "finished_at", "updated_at")
        df = self._frame(_LIST_RUNS, (), floats)
        configs = [json.loads(c) for c in df.pop("config_json")]
        for key in ("space", "algorithm", "dataset", "epochs"):
            df[key] = [c.get(key) for c in configs]
        df["duration_s"] = df["finished_at"].fillna(df["updated_at"]) - df["started_at"]
        return df[_LIST_COLUMNS]

    def data_version(self, run_id: str) -> tuple[Any, ...]:
        """Changes whenever the run gets rows or a new status: skip reloading while equal."""
        row = self._con().execute(_VERSION, {"id": run_id}).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}; it may have been deleted")
        return tuple(row)

    def step_metrics(self, run_id: str, max_points: int | None = None) -> pd.DataFrame:
        """Step rows by step; with max_points, evenly strided to at most that many rows,
        always including the last."""
        if max_points is None:
            return _expand_metrics(self._frame(_STEPS, {"id": run_id}, _STEP_FLOATS))
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        with self._snapshot():
            steps = np.fromiter((r[0] for r in self._con().execute(_STEP_NUMBERS, (run_id,))),
                                dtype=np.int64)
            stride = -(-len(steps) // int(max_points))  # ceil: at most max_points rows
            chosen = steps[::-1][::max(stride, 1)][::-1]  # evenly strided, the last kept
            return _expand_metrics(self._frame(
                _STEPS_CHOSEN, (run_id, json.dumps(chosen.tolist())), _STEP_FLOATS))

    def epoch_metrics(self, run_id: str) -> pd.DataFrame:
        """Epoch rows by epoch; indicators become columns named ind_<name>, task metrics
        columns named as the metric."""
        df = _expand_metrics(self._frame(_EPOCHS, {"id": run_id}, _EPOCH_FLOATS))
        ind = pd.DataFrame([json.loads(s) for s in df.pop("indicators_json")], index=df.index)
        return pd.concat([df, ind.astype(float).add_prefix("ind_")], axis=1)

    def alpha_history(self, run_id: str, cell: str,
                      source: str = "epoch") -> tuple[pd.DataFrame, np.ndarray]:
        """(index with epoch/step columns, raw α logits float32 (T, edges, ops))."""
        if source not in ("epoch", "step"):
            raise StoreError(f"α source must be 'epoch' or 'step', got {source!r}")
        rows = self._con().execute(_ALPHA_HISTORY, (run_id, source, cell)).fetchall()
        index = pd.DataFrame([r[:2] for r in rows], columns=["epoch", "step"], dtype="int64")
        empty = (0, 0)
        if not rows:
            run = self.get_run(run_id)
            empty = (len(run["edges"].get(cell, ())), len(run["ops"]))
        alphas = _stack([r[4] for r in rows], [tuple(r[2:4]) for r in rows], empty,
                        f"α of cell {cell!r}")
        return index, alphas

    def latest_alphas(self, run_id: str) -> dict[str, np.ndarray]:
        """The most recent raw α of each cell type (step or epoch record, whichever is later)."""
        rows = self._con().execute(_LATEST_ALPHAS, (run_id,)).fetchall()
        return {cell: _stack([data], [(r, c)], (), cell)[0] for cell, r, c, data, _ in rows}

    def extras_history(self, run_id: str, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """(index with an epoch column, float32 array (T, *shape)) of one per-epoch array."""
        rows = self._con().execute(_EXTRAS, (run_id, name)).fetchall()
        index = pd.DataFrame([r[:1] for r in rows], columns=["epoch"], dtype="int64")
        shapes = [tuple(json.loads(r[1])) for r in rows]
        return index, _stack([r[2] for r in rows], shapes, (0,), f"extra {name!r}")

    def logs(self, run_id: str, limit: int = 200) -> pd.DataFrame:
        """The last `limit` log lines, oldest first."""
        return self._frame(_LOGS, (run_id, int(limit)), ("ts",))

    def alerts(self, run_id: str) -> pd.DataFrame:
        return self._frame(_ALERTS, (run_id,), ("ts",))

    def genotypes(self, run_id: str) -> pd.DataFrame:
        return self._frame(_GENOTYPES, (run_id,))

    def _alphas_long(self, run_id: str) -> pd.DataFrame:
        """Every α value as one row: epoch, step, source, cell, edge, op, value."""
        rows = self._con().execute(_ALL_ALPHAS, (run_id,)).fetchall()
        shapes = [(row[4], row[5]) for row in rows]  # (edges, ops), flattened row-major
        sizes = [e * o for e, o in shapes]
        df = pd.DataFrame({k: np.repeat([row[i] for row in rows], sizes)
                           for i, k in enumerate(("epoch", "step", "source", "cell"))})
        none = [np.zeros(0, np.int64)]
        df["edge"] = np.concatenate([np.repeat(np.arange(e), o) for e, o in shapes] or none)
        df["op"] = np.concatenate([np.tile(np.arange(o), e) for e, o in shapes] or none)
        df["value"] = np.frombuffer(b"".join(row[6] for row in rows), _F32).astype(np.float32)
        return df

    def export_run(self, run_id: str, fmt: str, out_dir: str | Path,
                   allowed_root: str | Path | None = None) -> list[Path]:
        """Write the run as files into out_dir: run.json, genotype.txt and one table per
        epoch_metrics, step_metrics, alphas (long format), genotypes and alerts, as `fmt`.
        With allowed_root, out_dir (relative to it) must stay inside it."""
        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, "
                             f"got {fmt!r}")
        out = _inside(out_dir, allowed_root)
        with self._snapshot():
            run = self.get_run(run_id)
            tables = {"epoch_metrics": self.epoch_metrics(run_id),
                      "step_metrics": self.step_metrics(run_id),
                      "alphas": self._alphas_long(run_id), "genotypes": self.genotypes(run_id),
                      "alerts": self.alerts(run_id)}
        out.mkdir(parents=True, exist_ok=True)
        _inside(out, allowed_root)  # again: the folder may have been swapped for a link
        written = [_atomic_write(out / "run.json",
                                 lambda p: p.write_text(json.dumps(run, indent=2) + "\n")),
                   _atomic_write(out / "genotype.txt",
                                 lambda p: p.write_text(run["genotype"] + "\n"))]
        for name, df in tables.items():
            written.append(_atomic_write(out / f"{name}.{fmt}",
                                         lambda p, df=df: _WRITERS[fmt](df, p)))
        return written
