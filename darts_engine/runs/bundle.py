"""Run bundles: one run as a zip file, written by export and checked in full before import.

A bundle (format version 1) is one folder named after the run:

    <run id>/manifest.json      {"format": "dartboard-run-bundle", "version": 1, "tables": "csv"}
    <run id>/run.json           the run as RunStore.get_run returns it (config, status, summary)
    <run id>/genotype.txt       the final genotype
    <run id>/<table>.<fmt>      epoch_metrics, step_metrics, alphas (one row per α value),
                                genotypes, alerts, as RunStore.export_run writes them (csv, json
                                or parquet)

Bundles downloaded before manifest.json existed import too (the format is read off the names).

Over 400 lines for a reason: a bundle is foreign input, and most of this file checks it (every
file, table, column, dtype and value, with a message naming it) before one row is written.
Logs, per-epoch extras (PC-DARTS β) and checkpoints are not part of a bundle, so an imported run
can be watched and compared but not resumed.

A retrain run (runs/kinds.py) trains a discrete network: its bundle has no ops, edges or α rows,
its config is rebuilt through RetrainConfig and its genotypes are checked against its recipe.

Import trusts nothing in the file. Names, links and declared sizes are checked before anything
is decompressed, and reads stop at the size limits (zip bombs); then the run's schema and config,
every table's columns and types, α shapes against the search space, the epoch numbering and the
genotype text are checked; only then is the run written, in one transaction
(RunStore.add_run), so a refused bundle leaves the store exactly as it was.
"""

from __future__ import annotations

import io
import json
import lzma
import math
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from ..config import ConfigError, SearchConfig
from ..model.spaces import parse_any_genotype
from ..registries import SPACES
from ..train.retrain import check_genotype
from .kinds import RETRAIN, retrain_run_config, run_kind, split_retrain_config
from .schema import _EPOCH_COLS, _RUN_ID, _STEP_COLS, EXPORT_FORMATS, StoreError
from .states import RunState, names
from .store import RunStore

FORMAT = "dartboard-run-bundle"
VERSION = 1
MAX_MEMBER_BYTES = 512 << 20   # uncompressed, one table: a long run's α in JSON is ~0.5 GB
MAX_TOTAL_BYTES = 1 << 30      # uncompressed, all members together
MAX_SMALL_BYTES = 1 << 20      # manifest.json, run.json, genotype.txt
MAX_NAME = 200                 # a run name, as the rename box allows
TABLES = ("epoch_metrics", "step_metrics", "alphas", "genotypes", "alerts")
_SMALL = ("manifest.json", "run.json", "genotype.txt")
_REQUIRED = ("run.json", "genotype.txt")
_HOW = ("Export the run again (Runs page → Export, or `python -m darts_engine export RUN_ID "
        "--out RUN_ID.zip`) and import that file unchanged.")

# Columns of each table as the store's reads return them: "int", "float" or "str".
_ALPHA_KEYS = ("source", "cell", "epoch", "step")  # one α snapshot (edges, ops) per key
_SCHEMAS: dict[str, dict[str, str]] = {
    "step_metrics": {c: "int" if c in ("step", "epoch") else "float" for c in _STEP_COLS},
    "epoch_metrics": {c: "int" if c in ("epoch", "step") else "str" if c == "genotype"
                      else "float" for c in _EPOCH_COLS},  # plus ind_<name> floats
    "alphas": {"epoch": "int", "step": "int", "source": "str", "cell": "str", "edge": "int",
               "op": "int", "value": "float"},
    "genotypes": {"epoch": "int", "genotype": "str"},
    "alerts": {"epoch": "int", "rule": "str", "message": "str", "action": "str", "ts": "float"},
}
# run.json: key -> (kind, may be null). Kinds as above plus "dict" and "list".
_RUN_KEYS: dict[str, tuple[str, bool]] = {
    "id": ("str", False), "name": ("str", False), "config": ("dict", False),
    "status": ("str", False), "created_at": ("float", False), "started_at": ("float", True),
    "finished_at": ("float", True), "updated_at": ("float", False), "error": ("str", False),
    "device": ("str", False), "n_params": ("int", True), "steps_per_epoch": ("int", True),
    "epochs_done": ("int", False), "best_val_acc": ("float", True),
    "last_val_acc": ("float", True), "genotype": ("str", False), "ops": ("list", False),
    "edges": ("dict", False), "pid": ("int", True),
}
# Keys a bundle written before runs declared their task, metrics and artifacts lacks; the store
# fills in the defaults for such a run (RunStore.get_run).
_OPTIONAL_RUN_KEYS: dict[str, tuple[str, bool]] = {
    "task": ("str", False), "metrics": ("list", False), "artifacts": ("list", False)}


class BundleError(StoreError):
    """A file DARTboard will not import as a run; the message says what is wrong and the fix."""


# --- export ----------------------------------------------------------------------------------
def export_bundle(store: RunStore, run_id: str, fmt: str = "csv") -> bytes:
    """The run as a bundle: export_run's files plus manifest.json in a folder `<run_id>/`."""
    manifest = {"format": FORMAT, "version": VERSION, "tables": fmt, "run": run_id}
    with tempfile.TemporaryDirectory() as tmp:
        files = store.export_run(run_id, fmt, Path(tmp) / "run")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{run_id}/manifest.json", json.dumps(manifest, indent=2) + "\n")
            for f in files:
                z.write(f, f"{run_id}/{f.name}")
    return buf.getvalue()


# --- import ----------------------------------------------------------------------------------
def import_bundle(store: RunStore, source: bytes | str | Path | BinaryIO) -> str:
    """Add the run in a bundle (zip bytes, a path or a binary file) to the store; returns its id:
    the bundle's, or a new one when that id is taken. A run that was still active when exported
    becomes "interrupted". Raises BundleError before anything is written."""
    with _open(source) as z:
        members, fmt = _layout(z)
        read = _Reader(z, members)
        if "manifest.json" in members:
            _check_manifest(read.json("manifest.json"), fmt)
        run = _check_run(read.json("run.json"))
        genotype_txt = read.text("genotype.txt")
        metrics = [m.get("name") for m in run.get("metrics") or () if isinstance(m, dict)]
        tables = {t: _table(read(f"{t}.{fmt}", MAX_MEMBER_BYTES), f"{t}.{fmt}", fmt, t, metrics)
                  for t in TABLES}
    if run_kind(run["config"]) == RETRAIN:
        space = None
        if run["ops"] or run["edges"] or len(tables["alphas"]):
            raise BundleError(f"a retrain run trains a discrete network and has no α: run.json's "
                              f"ops and edges must be empty and alphas.{fmt} hold no rows. {_HOW}")
    else:
        space = SPACES.get(run["config"]["space"])
        _check_space(run, space, started=any(len(df) for df in tables.values()))
    if genotype_txt.strip() != run["genotype"].strip():
        raise BundleError(f"genotype.txt does not match run.json's genotype. {_HOW}")
    epoch_rows, last_epoch = _check_epochs(tables, run, space)
    alphas = ([] if space is None
              else _alpha_snapshots(tables["alphas"], space, epoch_rows, last_epoch))
    _check_alerts(tables["alerts"], run)
    original, status = run["id"], run["status"]
    if RunState(status).active:  # its writer is on another machine, or gone: nobody continues it here
        run |= {"status": "interrupted", "finished_at": run["finished_at"] or run["updated_at"],
                "error": run["error"] or f"exported while {status}"}
    note = (f"Imported from a run bundle (run {original}, status {status}). Bundles carry no "
            "checkpoint, logs or β history, so this run cannot be resumed.")
    return store.add_run(run, tables["step_metrics"], tables["epoch_metrics"], alphas,
                         tables["alerts"], note=note)


@contextmanager
def _open(source: bytes | str | Path | BinaryIO) -> Iterator[zipfile.ZipFile]:
    label, target = "the file", source
    if isinstance(source, (str, Path)):
        label = str(source)
        if not Path(source).is_file():
            raise BundleError(f"{label} does not exist or is not a file; give the path of a "
                              "run bundle (.zip)")
    elif isinstance(source, (bytes, bytearray)):
        target = io.BytesIO(source)
    try:
        z = zipfile.ZipFile(target)  # reads only the directory at the end of the file
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise BundleError(f"{label} is not a zip file. A run bundle is the .zip that Export "
                          f"writes. {_HOW}") from e
    with z:
        yield z


def _check_name(name: str) -> None:
    if "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise BundleError(f"bundle member {name!r} has an absolute path (or a backslash); a "
                          f"bundle holds only relative names like RUN_ID/run.json. {_HOW}")
    if any(part in ("", ".", "..") for part in name.removesuffix("/").split("/")):
        raise BundleError(f"bundle member {name!r} could point outside the bundle folder ('..', "
                          f"'.' or an empty part: a zip-slip name); refused. {_HOW}")


def _layout(z: zipfile.ZipFile) -> tuple[dict[str, zipfile.ZipInfo], str]:
    """Member base name -> entry, and the table format, after checking every entry's name, type
    and declared size. Nothing is decompressed here."""
    members: dict[str, zipfile.ZipInfo] = {}
    folders, total = set(), 0
    for info in z.infolist():
        name = info.filename
        _check_name(name)
        mode = info.external_attr >> 16  # Unix mode, when the zip was made on Unix
        if stat.S_ISLNK(mode):
            raise BundleError(f"bundle member {name!r} is a symbolic link; a bundle holds only "
                              f"plain files. {_HOW}")
        if info.flag_bits & 0x1:
            raise BundleError(f"bundle member {name!r} is encrypted; bundles are not. {_HOW}")
        parts = name.removesuffix("/").split("/")
        if len(parts) > 2 or (info.is_dir() and len(parts) > 1):
            raise BundleError(f"bundle member {name!r} is nested too deep; a bundle is one folder "
                              f"of files (RUN_ID/run.json, ...). {_HOW}")
        if info.is_dir():
            folders.add(parts[0])
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded
            raise BundleError(f"bundle member {name!r} is not a plain file. {_HOW}")
        folders.add(parts[0] if len(parts) == 2 else "")
        base = parts[-1]
        if base in members:
            raise BundleError(f"the bundle holds {base!r} twice. {_HOW}")
        limit = MAX_SMALL_BYTES if base in _SMALL else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise BundleError(f"bundle member {name!r} unpacks to {info.file_size:,} bytes, over "
                              f"the limit of {limit:,}; refused (a zip bomb?). Export large runs "
                              "as parquet, the smallest format.")
        total += info.file_size
        members[base] = info
    if total > MAX_TOTAL_BYTES:
        raise BundleError(f"the bundle unpacks to {total:,} bytes, over the limit of "
                          f"{MAX_TOTAL_BYTES:,}; refused (a zip bomb?). Export large runs as "
                          "parquet, the smallest format.")
    if len(folders) > 1:
        raise BundleError(f"a bundle holds one run folder; this one has {sorted(folders)}. "
                          "Import one run at a time.")
    expected = {*_SMALL, *(f"{t}.{f}" for t in TABLES for f in EXPORT_FORMATS)}
    if unexpected := sorted(set(members) - expected):
        raise BundleError(f"unexpected file(s) in the bundle: {', '.join(unexpected)}. A bundle "
                          f"holds {', '.join(_SMALL)} and the tables {', '.join(TABLES)} (as "
                          f"csv, json or parquet), nothing else. {_HOW}")
    formats = sorted({b.rsplit(".", 1)[1] for b in members if b not in _SMALL})
    if len(formats) > 1:
        raise BundleError(f"the bundle mixes table formats ({', '.join(formats)}); it must use "
                          f"one. {_HOW}")
    fmt = formats[0] if formats else "csv"
    if missing := [m for m in (*_REQUIRED, *(f"{t}.{fmt}" for t in TABLES)) if m not in members]:
        raise BundleError(f"the bundle lacks {', '.join(missing)}. {_HOW}")
    return members, fmt


class _Reader:
    """Decompresses members, at most their limit each and MAX_TOTAL_BYTES in all: the sizes a
    zip declares may lie."""

    def __init__(self, z: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> None:
        self.z, self.members, self.left = z, members, MAX_TOTAL_BYTES

    def __call__(self, base: str, limit: int) -> bytes:
        info = self.members[base]
        cap = min(limit, self.left)
        try:
            with self.z.open(info) as f:
                data = f.read(cap + 1)
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                NotImplementedError, RuntimeError, ValueError) as e:
            raise BundleError(f"{base} cannot be unpacked ({e}); the bundle is damaged. "
                              f"{_HOW}") from e
        if len(data) > cap:
            raise BundleError(f"{base} unpacks to more than {cap:,} bytes (more than the zip "
                              "declares); refused (a zip bomb?).")
        self.left -= len(data)
        return data

    def text(self, base: str) -> str:
        try:
            return self(base, MAX_SMALL_BYTES).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BundleError(f"{base} is not UTF-8 text ({e}). {_HOW}") from e

    def json(self, base: str) -> Any:
        try:
            return json.loads(self.text(base))
        except (json.JSONDecodeError, RecursionError) as e:
            raise BundleError(f"{base} is not valid JSON ({e}). {_HOW}") from e


def _check_manifest(manifest: Any, fmt: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"manifest.json does not say format {FORMAT!r}: this is not a "
                          f"DARTboard run bundle. {_HOW}")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"manifest.json: version must be a whole number >= 1, got {version!r}")
    if version > VERSION:
        raise BundleError(f"the bundle has format version {version}; this DARTboard reads "
                          f"version {VERSION}. Update DARTboard to import it.")
    if manifest.get("tables") != fmt:
        raise BundleError(f"manifest.json says the tables are {manifest.get('tables')!r} but "
                          f"the files are {fmt}. {_HOW}")


def _kind_ok(value: Any, kind: str) -> bool:
    if kind in ("int", "float") and (isinstance(value, bool) or
                                     not isinstance(value, (int, float))):
        return False
    if kind == "int":  # SQLite's INTEGER range
        return isinstance(value, int) and -2**63 <= value < 2**63
    if kind == "float":
        return abs(value) < 2**1023 and math.isfinite(value)  # huge ints would overflow
    return isinstance(value, {"str": str, "dict": dict, "list": list}[kind])


def _check_run(data: Any) -> dict[str, Any]:
    """run.json, every key typed as _RUN_KEYS says; the config rebuilt through SearchConfig
    (a retrain's through RetrainConfig)."""
    if not isinstance(data, dict):
        raise BundleError(f"run.json must hold one JSON object (the run), got "
                          f"{type(data).__name__}. {_HOW}")
    if missing := [k for k in _RUN_KEYS if k not in data]:
        raise BundleError(f"run.json lacks {', '.join(missing)}. {_HOW}")
    if unknown := sorted(set(data) - set(_RUN_KEYS) - set(_OPTIONAL_RUN_KEYS)):
        raise BundleError(f"run.json has unknown key(s) {', '.join(unknown)}; it may come from "
                          "a newer DARTboard. Update DARTboard to import it.")
    for key, (kind, nullable) in {**_RUN_KEYS, **_OPTIONAL_RUN_KEYS}.items():
        if key not in data:
            continue
        value = data[key]
        if not (value is None and nullable) and not _kind_ok(value, kind):
            article = "an" if kind == "int" else "a"
            raise BundleError(f"run.json: {key} must be {article} {kind}"
                              f"{' or null' if nullable else ''}, got {value!r}. {_HOW}")
    run = dict(data)
    if not _RUN_ID.fullmatch(run["id"]):
        raise BundleError(f"run.json: id must be a run id like 20250101-120000-ab12, got "
                          f"{run['id']!r}. {_HOW}")
    if run["status"] not in names():
        raise BundleError(f"run.json: unknown status {run['status']!r}; one of "
                          f"{', '.join(names())} is expected. {_HOW}")
    if len(run["name"]) > MAX_NAME:
        raise BundleError(f"run.json: name must be at most {MAX_NAME} characters, got "
                          f"{len(run['name'])}. Shorten it in run.json.")
    for key in ("epochs_done", "n_params", "steps_per_epoch"):
        if run[key] is not None and run[key] < 0:
            raise BundleError(f"run.json: {key} must be >= 0, got {run[key]}. {_HOW}")
    try:
        run["config"] = (_retrain_config(run["config"]) if run_kind(run["config"]) == RETRAIN
                         else SearchConfig.from_dict(run["config"]).to_dict())
    except ConfigError as e:
        raise BundleError(f"run.json: the run's config is not valid here: {e}. Fix that field "
                          "in run.json, or update DARTboard if the bundle is newer.") from e
    return run


def _retrain_config(config: dict[str, Any]) -> dict[str, Any]:
    source_run, source_epoch = config.get("source_run"), config.get("source_epoch")
    if not (source_run is None or isinstance(source_run, str)):
        raise ConfigError(f"source_run must be a run id or null, got {source_run!r}",
                          field="source_run")
    if not (source_epoch is None or (type(source_epoch) is int and source_epoch >= 0)):
        raise ConfigError(f"source_epoch must be an epoch >= 0 or null, got {source_epoch!r}",
                          field="source_epoch")
    if not isinstance(config.get("genotype"), str):
        raise ConfigError("a retrain's config needs the genotype text it trains", field="genotype")
    cfg, genotype = split_retrain_config(config)
    return retrain_run_config(cfg, str(check_genotype(cfg, genotype)), source_run, source_epoch)


def _check_space(run: dict[str, Any], space: Any, started: bool) -> None:
    """ops and edges as the run's search space has them (both empty: a run that never started)."""
    ops, edges = run["ops"], run["edges"]
    if not (ops or edges or started):
        return
    want = {t: space.n_edges_of(t) for t in space.cell_types}
    got = {t: len(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else None
           for t, v in edges.items()}
    if ops != list(space.ops) or got != want:
        raise BundleError(f"run.json: ops {ops} and edges per cell {got} do not fit the "
                          f"{space.name!r} space (ops {list(space.ops)}, edges per cell {want}). "
                          f"{_HOW}")


def _table(raw: bytes, member: str, fmt: str, table: str,
           metrics: list[str] | None = None) -> pd.DataFrame:
    """One table, read as its format says, with exactly the schema's columns and types; the
    metric tables may also have a float column per metric run.json declares (`metrics`)."""
    try:
        if fmt == "csv":  # everything as text: "" is how to_csv writes NaN, "NA" may be a name
            df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
        elif fmt == "json":
            rows = json.loads(raw)
            if not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
                raise ValueError("expected a list of records")
            df = pd.DataFrame.from_records(rows)
        else:
            df = pd.read_parquet(io.BytesIO(raw))
    except Exception as e:  # whatever pandas, json or pyarrow raise on foreign bytes
        raise BundleError(f"{member} cannot be read as {fmt} ({e}). {_HOW}") from e
    schema = dict(_SCHEMAS[table])
    if table == "epoch_metrics":  # indicator columns
        schema |= {str(c): "float" for c in df.columns if str(c).startswith("ind_")}
    if table in ("epoch_metrics", "step_metrics"):  # the run's task metrics, by name
        schema |= {str(c): "float" for c in df.columns
                   if str(c) in (metrics or ()) and str(c) not in schema}
    if df.empty and len(df.columns) == 0:  # to_json writes an empty table as []
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES[k]) for c, k in schema.items()})
    columns = [str(c) for c in df.columns]
    missing = [c for c in schema if c not in columns]
    unknown = [c for c in columns if c not in schema]
    if missing or unknown or len(set(columns)) != len(columns):
        raise BundleError(f"{member} must have the columns {', '.join(schema)}; "
                          f"missing: {missing or 'none'}, unexpected: {unknown or 'none'}. "
                          f"{_HOW}")
    df.columns = columns
    return pd.DataFrame({c: _column(df[c], kind, f"{member}, column {c!r}")
                         for c, kind in schema.items()})


_DTYPES = {"int": "int64", "float": "float64", "str": "object"}


def _column(values: pd.Series, kind: str, where: str) -> np.ndarray:
    """One column as int64, float64 or str objects. Typed columns (parquet, most JSON) and CSV
    text convert in one NumPy call; only a column that fails is scanned for the bad row."""
    if kind == "str":
        raw = values.to_numpy(dtype=object)
        if not (isinstance(values.dtype, pd.StringDtype) and not values.isna().any()):
            for i, v in enumerate(raw):
                if not isinstance(v, str):
                    raise BundleError(f"{where} must hold text, got {v!r} in row {i}. {_HOW}")
        return raw
    try:
        if values.dtype.kind in "iuf":
            arr = values.to_numpy(np.float64)
        elif isinstance(values.dtype, pd.StringDtype):  # CSV text; to_csv writes NaN as ""
            arr = pd.to_numeric(values.mask(values.isin(("", "nan", "NaN")))).to_numpy(
                np.float64)
        else:  # mixed objects (JSON with nulls or strings): null is NaN, bools are not numbers
            raw = values.to_numpy(dtype=object)
            if any(isinstance(v, (bool, np.bool_)) for v in raw):
                raise ValueError
            arr = np.asarray([np.nan if v is None or v == "" else v for v in raw], np.float64)
    except (TypeError, ValueError, OverflowError):
        i, v = next(((i, v) for i, v in enumerate(values.to_numpy(dtype=object))
                     if not _number(v)), (0, values.iloc[0]))
        raise BundleError(f"{where} must hold numbers, got {v!r} in row {i}. {_HOW}") from None
    if kind == "float":
        return arr
    whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2**53)
    if not whole.all():
        i = int(np.argmin(whole))
        raise BundleError(f"{where} must hold whole numbers, got {values.iloc[i]!r} in row {i}. "
                          f"{_HOW}")
    return arr.astype(np.int64)


def _number(v: Any) -> bool:
    """A value the numeric columns accept: a number, a numeric string, "" or None (NaN)."""
    if v is None or isinstance(v, float) or v == "":
        return True
    if isinstance(v, (bool, np.bool_)):
        return False
    try:
        float(v)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _check_epochs(tables: dict[str, pd.DataFrame], run: dict[str, Any],
                  space: Any) -> tuple[set[tuple[int, int]], int]:
    """Epoch numbering, steps and genotypes agree with each other and with run.json (tables
    come back sorted). Returns the (epoch, step) of every epoch row and the last epoch any row
    may have: the one in progress, if the run stopped before its last."""
    em, sm, gt = tables["epoch_metrics"], tables["step_metrics"], tables["genotypes"]
    done, limit = run["epochs_done"], run["config"]["epochs"]
    last = min(done, limit - 1)
    epochs = sorted(em["epoch"].tolist())
    if epochs != list(range(len(em))) or len(em) != done or done > limit:
        raise BundleError(f"epoch_metrics must number the epochs 0, 1, ... once each, as many "
                          f"as run.json's epochs_done ({done}, at most the config's {limit}); "
                          f"got {epochs[:10]}{' ...' if len(epochs) > 10 else ''}. {_HOW}")
    em = tables["epoch_metrics"] = em.sort_values("epoch", ignore_index=True)
    if (np.diff(em["step"]) <= 0).any() or (em["step"] < 1).any():
        raise BundleError(f"epoch_metrics: step must grow from epoch to epoch, got "
                          f"{em['step'].tolist()[:10]}. {_HOW}")
    steps = sm.sort_values("step", ignore_index=True)
    if (steps["step"] < 1).any() or steps["step"].duplicated().any():
        raise BundleError(f"step_metrics: step must count 1, 2, ... with no repeats. {_HOW}")
    if (np.diff(steps["epoch"]) < 0).any() or (steps["epoch"] < 0).any() or \
            (steps["epoch"] > last).any():
        raise BundleError(f"step_metrics: epoch must be 0..{last} (the epochs done and the one "
                          f"in progress) and never go back as step grows. {_HOW}")
    tables["step_metrics"] = steps
    gt = gt.sort_values("epoch", ignore_index=True)
    if gt["epoch"].tolist() != em["epoch"].tolist() or \
            gt["genotype"].tolist() != em["genotype"].tolist():
        raise BundleError(f"genotypes does not match epoch_metrics' genotype column. {_HOW}")
    for text in {*em["genotype"], run["genotype"]} - {""}:
        if space is None:  # a retrain: the recipe's kind of genotype
            try:
                check_genotype(split_retrain_config(run["config"])[0], text)
            except ConfigError as e:
                raise BundleError(f"{e}. {_HOW}") from e
            continue
        try:
            g = parse_any_genotype(text, ops=space.ops)
        except ValueError as e:
            raise BundleError(f"genotype {text[:80]!r} cannot be read: {e}. {_HOW}") from e
        if set(g.cells()) != set(space.cell_types):
            raise BundleError(f"genotype {text[:80]!r} has cells {sorted(g.cells())}; the "
                              f"{space.name!r} space has {list(space.cell_types)}. {_HOW}")
    return set(zip(em["epoch"].tolist(), em["step"].tolist(), strict=True)), last


def _alpha_snapshots(df: pd.DataFrame, space: Any, epoch_rows: set[tuple[int, int]],
                     last_epoch: int) -> list[tuple[int, int, str, str, np.ndarray]]:
    """The long α table back as (epoch, step, source, cell, raw α (edges, ops)), every snapshot
    a full grid of the space's shape (rows per cell type: `n_edges_of`)."""
    n_ops = len(space.ops)
    rows_of = {t: space.n_edges_of(t) for t in space.cell_types}
    n_edges = max(rows_of.values())
    if ((df["epoch"] < 0) | (df["epoch"] > last_epoch) | (df["step"] < 0)).any():
        raise BundleError(f"alphas: epoch must be 0..{last_epoch} and step >= 0. {_HOW}")
    if bad := sorted(set(df["source"].unique()) - {"epoch", "step"}):
        raise BundleError(f"alphas: source must be 'epoch' or 'step', got {bad[:3]}. {_HOW}")
    if bad := sorted(set(df["cell"].unique()) - set(space.cell_types)):
        raise BundleError(f"alphas: cell {bad[0]!r} is not a cell type of the {space.name!r} "
                          f"space ({', '.join(space.cell_types)}). {_HOW}")
    for col, n in (("edge", n_edges), ("op", n_ops)):
        if ((df[col] < 0) | (df[col] >= n)).any():
            raise BundleError(f"alphas: {col} must be 0..{n - 1} in the {space.name!r} space "
                              f"(α of shape (edges={n_edges}, ops={n_ops})), got "
                              f"{int(df[col].max())}. {_HOW}")
    df = df.sort_values([*_ALPHA_KEYS, "edge", "op"], kind="stable", ignore_index=True)
    keys = df[list(_ALPHA_KEYS)]
    starts = np.flatnonzero((keys != keys.shift()).any(axis=1).to_numpy())
    sizes = np.diff(np.append(starts, len(df)))
    flat = (df["edge"] * n_ops + df["op"]).to_numpy()
    cells = keys["cell"].to_numpy()[starts]
    expected = np.array([rows_of[c] * n_ops for c in cells], dtype=np.int64)
    grid = np.concatenate([np.arange(e) for e in expected]) if len(expected) else flat[:0]
    if (sizes != expected).any() or len(flat) != len(grid) or (flat != grid).any():
        k = int(np.argmax(sizes != expected)) if (sizes != expected).any() else 0
        bad = keys.iloc[starts[k] if len(starts) else 0]
        rows = rows_of.get(str(bad["cell"]), n_edges)
        raise BundleError(f"alphas: the snapshot {dict(bad)} is not a full (edges={rows}, "
                          f"ops={n_ops}) grid, one value per edge and op, as the "
                          f"{space.name!r} space needs. {_HOW}")
    flat_values = np.array(df["value"], dtype=np.float32)  # a copy
    values = [v.reshape(rows_of[c], n_ops)
              for v, c in zip(np.split(flat_values, np.cumsum(sizes)[:-1]), cells, strict=True)]
    masks = {cell: space.op_mask(cell) for cell in space.cell_types}
    snapshots = []
    for (source, cell, epoch, step), a in zip(keys.iloc[starts].itertuples(index=False), values,
                                              strict=True):
        # an op the edge does not have (RobustDARTS S1) is −inf, which JSON writes as null
        off = ~masks[cell]
        if not (np.isfinite(a[~off]).all() and (np.isnan(a[off]) | np.isneginf(a[off])).all()):
            raise BundleError(f"alphas: the snapshot of cell {cell!r} at epoch {epoch}, step "
                              f"{step} has a missing or infinite α where the {space.name!r} "
                              f"space has an op (or a finite one where it has none). {_HOW}")
        a[off] = -np.inf
        if source == "epoch" and (epoch, step) not in epoch_rows:
            raise BundleError(f"alphas: the epoch snapshot of cell {cell!r} at epoch {epoch}, "
                              f"step {step} has no matching epoch_metrics row. {_HOW}")
        snapshots.append((int(epoch), int(step), source, cell, a))
    return snapshots


def _check_alerts(df: pd.DataFrame, run: dict[str, Any]) -> None:
    if ((df["epoch"] < 0) | (df["epoch"] > run["epochs_done"])).any():
        raise BundleError(f"alerts: epoch must be 0..{run['epochs_done']} (the epochs done), got "
                          f"{df['epoch'].tolist()[:10]}. {_HOW}")
    if not np.isfinite(df["ts"]).all():
        raise BundleError(f"alerts: ts must be a time in Unix seconds. {_HOW}")
