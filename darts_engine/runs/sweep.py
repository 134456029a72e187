"""Sweeps (issue 16): one base config × a grid (or a list) of points over config fields × a set
of seeds. Every combination is an ordinary run of the run manager (watchable on Live, listed in
Runs, exportable), tagged in the store with its sweep and its grid point; the manager's bounded
concurrency is the local executor.

Whether DARTS collapses depends on its settings and on its seed (RobustDARTS, Zela et al. 2020,
§3-4), so a what-if is a grid read over seeds. A grid is the full product of its fields' values
in the order given, like Optuna's `GridSampler(search_space)` (optuna/samplers/_grid.py) and Ray
Tune's `tune.grid_search` (ray/tune/search/variant_generator.py); the expansion order is stable:
grid order (the first field varies slowest), then seed.

Every check runs before anything is queued: each expanded config is built through
`SearchConfig.from_dict`, so a value a field refuses is refused with the field's own message.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from ..config import ConfigError, SearchConfig, field_help
from ..train.data import check_config
from .manager import RunManager
from .schema import SweepNotFound
from .states import names
from .store import RunStore

MAX_RUNS = 500  # one sweep queues at most this many runs (points × seeds)
SEED = "seed"   # swept with `seeds`, never in the grid
_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")


@dataclass(frozen=True)
class SweepSpec:
    """base: config fields every run shares (a SearchConfig dict or part of one); grid: field ->
    values, the full product in this order; or points: an explicit list of {field: value}
    (the same fields in each); seeds: each point runs once per seed."""

    base: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    points: list[dict[str, Any]] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])

    def fields(self) -> list[str]:
        """The swept fields, in grid order (or in the first point's order)."""
        if self.points is None:
            return list(self.grid)
        return list(self.points[0]) if self.points else []

    def to_dict(self) -> dict[str, Any]:
        """JSON data; the grid as [field, values] pairs so that its order survives."""
        return {"base": dict(self.base), "grid": [[k, list(v)] for k, v in self.grid.items()],
                "points": None if self.points is None else [dict(p) for p in self.points],
                "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        return cls(base=dict(data["base"]), grid={k: list(v) for k, v in data["grid"]},
                   points=data.get("points"), seeds=list(data["seeds"]))


class SweepRun(NamedTuple):
    """One run of a sweep: its grid point (without the seed), its seed, its whole config."""

    point: dict[str, Any]
    seed: int
    config: SearchConfig


# --- parsing the CLI's and the form's text ------------------------------------------------------
def parse_grid(text: str) -> tuple[str, list[str]]:
    """`"arch_lr=3e-4,1e-3,3e-3"` -> ("arch_lr", ["3e-4", "1e-3", "3e-3"]); the values stay text
    (SearchConfig coerces them). `arch-lr=...` names the same field."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    items = [v.strip() for v in values.split(",")]
    if not sep or not name or not values.strip():
        raise ConfigError(f"a grid is FIELD=V1,V2,... (e.g. arch_lr=3e-4,1e-3), got {text!r}",
                          field="grid")
    if "" in items:
        raise ConfigError(f"grid {name}: an empty value in {values!r}; separate values with "
                          "single commas", field=name)
    return name, items


def grid_from_texts(texts: list[str]) -> dict[str, list[str]]:
    """Several `--grid FIELD=V1,V2` -> an ordered grid; one field twice is refused."""
    grid: dict[str, list[str]] = {}
    for text in texts:
        name, values = parse_grid(text)
        if name in grid:
            raise ConfigError(f"grid {name} is given twice; list all its values in one "
                              f"--grid {name}=V1,V2,...", field=name)
        grid[name] = values
    return grid


def parse_seeds(text: str) -> list[int]:
    """`"0-4"` -> [0, 1, 2, 3, 4]; `"0,1,5"` -> [0, 1, 5]; both mix: `"0-2,7"`."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if (m := _RANGE.fullmatch(part)) is not None:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ConfigError(f"seeds: the range {part!r} runs backwards; write {hi}-{lo}",
                                  field="seeds")
            if hi - lo + 1 > MAX_RUNS:
                raise ConfigError(f"seeds: the range {part!r} has {hi - lo + 1} seeds; a sweep "
                                  f"runs at most {MAX_RUNS} runs", field="seeds")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ConfigError(f"seeds must be integers >= 0 as a range 0-4 or a list 0,1,5, "
                              f"got {text!r}", field="seeds")
    return seeds


# --- validation and expansion -------------------------------------------------------------------
def expand(spec: SweepSpec) -> list[SweepRun]:
    """Every run of the sweep, in grid order, then seed. ConfigError naming the field (and the
    fix) for anything the sweep or one of its configs refuses."""
    return _checked(spec)[1]


def _checked(spec: SweepSpec) -> tuple[SweepSpec, list[SweepRun]]:
    """(the spec with each value as its field's type, every run of it)."""
    seeds = _check_seeds(spec.seeds)
    raw_points, swept = _check_points(spec)
    if (n := len(raw_points) * len(seeds)) > MAX_RUNS:
        raise ConfigError(f"the sweep has {n} runs ({len(raw_points)} points × {len(seeds)} "
                          f"seeds); at most {MAX_RUNS}: use fewer values or seeds", field="grid")
    runs, points = [], []
    for raw in raw_points:
        point: dict[str, Any] = {}
        for seed in seeds:
            cfg = _config(spec.base, raw, seed, swept)
            point = {k: getattr(cfg, k) for k in swept}
            runs.append(SweepRun(point, seed, cfg))
        points.append(point)
    _check_distinct(spec, points)
    if spec.points is None:
        grid = {k: list(dict.fromkeys(p[k] for p in points)) for k in swept}
        return SweepSpec(dict(spec.base), grid, None, seeds), runs
    return SweepSpec(dict(spec.base), {}, points, seeds), runs


def _check_seeds(seeds: list[int]) -> list[int]:
    if not seeds:
        raise ConfigError("the sweep has no seeds; give at least one (e.g. --seeds 0-4)",
                          field="seeds")
    bad = [s for s in seeds if type(s) is not int or s < 0]
    if bad:
        raise ConfigError(f"seeds must be integers >= 0, got {bad[0]!r}", field="seeds")
    if len(set(seeds)) < len(seeds):
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        raise ConfigError(f"seeds: {', '.join(map(str, twice))} given twice; list each seed "
                          "once", field="seeds")
    return list(seeds)


def _check_points(spec: SweepSpec) -> tuple[list[dict[str, Any]], list[str]]:
    """The raw points (grid product or the list) and the swept fields, names checked."""
    if spec.grid and spec.points is not None:
        raise ConfigError("a sweep takes a grid or a list of points, not both", field="grid")
    if spec.points is None:
        if not spec.grid:
            raise ConfigError("the sweep has no grid; sweep at least one field, e.g. --grid "
                              "arch_lr=3e-4,1e-3", field="grid")
        for name, values in spec.grid.items():
            _check_field(name)
            if not isinstance(values, (list, tuple)) or not values:
                raise ConfigError(f"grid {name} has no values; give at least one, e.g. "
                                  f"--grid {name}=V1,V2", field=name)
        if (n := math.prod(len(v) for v in spec.grid.values())) > MAX_RUNS:  # before the product
            raise ConfigError(f"the grid has {n} points; a sweep runs at most {MAX_RUNS} runs: "
                              "use fewer values", field="grid")
        return _spec_points(spec), list(spec.grid)
    if not spec.points:
        raise ConfigError("the sweep's list of points is empty; give at least one point",
                          field="grid")
    keys = list(spec.points[0])
    if not keys:
        raise ConfigError("a sweep point sets no field; give each point its values",
                          field="grid")
    for p in spec.points:
        if set(p) != set(keys):
            raise ConfigError(f"every point must set the same fields ({', '.join(keys)}); "
                              f"got one with {', '.join(p) or 'none'}", field="grid")
    for name in keys:
        _check_field(name)
    return [dict(p) for p in spec.points], keys


def _check_field(name: str) -> None:
    if name == SEED:
        raise ConfigError("seed cannot be swept in the grid: seeds have their own option "
                          "(--seeds 0-4, or the form's seeds)", field=SEED)
    known = field_help()  # the core fields and every plug-in's declared options
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else \
            "; see `python -m darts_engine search --help` for the fields"
        raise ConfigError(f"unknown config field {name!r} in the sweep{hint}", field=name)


def _config(base: dict[str, Any], point: dict[str, Any], seed: int,
            swept: list[str]) -> SearchConfig:
    try:
        return SearchConfig.from_dict({**base, **point, SEED: seed})
    except ConfigError as e:
        where = (f"grid point {point_label(point)}, seed {seed}" if e.field in (*swept, SEED)
                 else "the base config")
        raise ConfigError(f"{where}: {e}", field=e.field) from e


def _check_distinct(spec: SweepSpec, points: list[dict[str, Any]]) -> None:
    """Two values that are one value of the field (1e-3 and 0.001) would run twice."""
    if spec.points is None:
        for name, values in spec.grid.items():
            typed = list(dict.fromkeys(p[name] for p in points))
            if len(typed) < len(values):
                raise ConfigError(f"grid {name} lists one value twice: "
                                  f"{', '.join(map(str, values))} are {len(typed)} distinct "
                                  "values; list each once", field=name)
        return
    seen: set[str] = set()
    for p in points:
        key = json.dumps(p, sort_keys=True)
        if key in seen:
            raise ConfigError(f"the point {point_label(p)} is listed twice; list each once",
                              field=next(iter(p)))
        seen.add(key)


def point_label(point: dict[str, Any]) -> str:
    """`arch_lr=0.001, arch_weight_decay=0`: a point as one line."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in point.items())


def run_name(sweep_name: str, run: SweepRun) -> str:
    return f"{sweep_name or 'sweep'} · {point_label(run.point)} · seed {run.seed}"


# --- launching and reading ----------------------------------------------------------------------
def launch_sweep(manager: RunManager, spec: SweepSpec, name: str = "") -> str:
    """Check every run (ConfigError before any row is written), record the sweep, then queue
    each run through `RunManager.launch` tagged with the sweep and its point. Returns the
    sweep id; the manager starts the runs `max_concurrent` at a time."""
    typed, runs = _checked(spec)
    for run in runs:
        check_config(run.config)  # the data checks launch does, for every run before the first
    sweep_id = manager.store.create_sweep(typed.to_dict(), name=name)
    for run in runs:
        manager.launch(run.config, run_name(name, run), sweep_id=sweep_id, sweep_point=run.point)
    return sweep_id


def sweep_progress(store: RunStore, sweep_id: str) -> pd.DataFrame:
    """One row per grid point, in grid order: the point (a dict), a column per swept field,
    then how many of its runs are in each run state (every state, zeros too) and `runs`."""
    spec = SweepSpec.from_dict(store.get_sweep(sweep_id)["spec"])
    runs = store.sweep_runs(sweep_id)

    def empty(point: dict[str, Any]) -> dict[str, Any]:
        return {"point": point, **point, **dict.fromkeys(names(), 0), "runs": 0}

    # every point of the spec (one whose runs were deleted shows zeros), keyed by its JSON
    rows = {_key(p): empty(p) for p in _spec_points(spec)}
    for point, status in zip(runs["point"], runs["status"], strict=True):
        row = rows.setdefault(_key(point), empty(point))
        row[status] += 1
        row["runs"] += 1
    return pd.DataFrame(list(rows.values()), columns=["point", *spec.fields(), *names(), "runs"])


def _key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def _spec_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The spec's points in expansion order."""
    if spec.points is not None:
        return [dict(p) for p in spec.points]
    keys = list(spec.grid)
    return [dict(zip(keys, c, strict=True)) for c in itertools.product(*spec.grid.values())]


def delete_sweep(manager: RunManager, sweep_id: str) -> None:
    """Stop and delete every run of the sweep (live ones through the manager), then the sweep."""
    for run_id in manager.store.sweep_runs(sweep_id)["id"]:
        manager.delete(run_id)
    try:
        manager.store.delete_sweep(sweep_id)
    except SweepNotFound:
        pass  # deleting its last run deleted it
