"""Launch: a search config form built from the engine's field metadata and registries, with
presets and "launch as a pair" (the same config and seed, bi-level and single-level).

Sweep mode: the form is the base config; up to three of its fields get a list of values each,
and a set of seeds (darts_engine/runs/sweep.py: the full grid × seeds, every run an ordinary
run). "Check sweep" expands and checks every run and shows the run count and an estimated time
(measured epoch times of finished runs of the same cost, never a guess); "Start" queues them on
the local run manager or on Ray, and opens the Sweep page.

Invalid values are refused by the engine (SearchConfig, then the data checks); the message
appears under the field it names and nothing starts.
"""

import importlib.util
import json
import math
from typing import Any

import numpy as np
import streamlit as st

from darts_engine import ConfigError, DataError, SearchConfig
from darts_engine.config import field_help
from darts_engine.registries import by_name
from darts_engine.runs.manager import RunManager
from darts_engine.runs.paths import data_root, resolve_inside
from darts_engine.runs.states import RunState
from darts_engine.runs.store import RunStore, StoreError
from darts_engine.runs.sweep import MAX_RUNS, SweepSpec, expand, launch_sweep, parse_seeds
from darts_engine.train.presets import DEFAULT_PRESET, PRESETS, preset_values
from darts_engine.viz.tables import format_duration
from pages import common

FIELDS = field_help()
GROUP_TITLES = {"search": "What to search", "data": "Data", "network": "Network",
                "schedule": "Schedule", "weights": "Weight optimiser (SGD)",
                "arch": "Architecture optimiser (Adam)", "runtime": "Runtime",
                "indicators": "Collapse indicators and alerts",
                "method": "Method and relaxation (DARTS variants)"}
OPEN_GROUPS = ("search", "data", "network", "schedule")
MODES = ("One run", "Sweep")
MAX_SWEPT = 3
# Fields a sweep can vary: numbers, registry choices and switches (the seed has its own input).
SWEEPABLE = [n for n, m in FIELDS.items()
             if n != "seed" and (m["choices"] or m["type"] in ("int", "float", "bool"))]
# What an epoch's cost depends on: a finished run with these equal times the estimate.
COST_FIELDS = ("task", "space", "dataset", "algorithm", "method", "data_limit", "batch_size",
               "init_channels", "cells", "train_portion", "device")
SCANNED_RUNS = 200  # newest finished runs looked at for epoch times


def _key(name: str) -> str:
    return f"launch_{name}"


def _widget_value(name: str, value: Any) -> Any:
    """Config value -> what its widget holds (floats are typed as text, e.g. 3e-4). The
    dataset folder's default is the data root itself: the form reads a relative folder inside
    the data root, so the config's `./data` would otherwise become `<data root>/data`."""
    if name == "data_root" and value == FIELDS["data_root"]["default"]:
        return str(data_root())
    return repr(float(value)) if FIELDS[name]["type"] == "float" else value


def _seed(values: dict[str, Any], pair: bool) -> None:
    for name, value in values.items():
        st.session_state[_key(name)] = _widget_value(name, value)
    st.session_state["launch_pair"] = pair
    st.session_state["launch_errors"] = {}


def _apply_preset() -> None:
    name = st.session_state["launch_preset"]
    _seed(preset_values(name), PRESETS[name].pair)


def _form_values() -> dict[str, Any]:
    """The form's fields; a folder typed here must stay inside the data root
    (DARTBOARD_DATA, default ./data)."""
    values = {name: st.session_state[_key(name)] for name in FIELDS}
    values["data_root"] = str(resolve_inside(data_root(), values["data_root"], "data_root"))
    return values


def _submit() -> None:
    """Form callback: build the config, launch, remember where to go. Errors stay on the page."""
    values = {name: st.session_state[_key(name)] for name in FIELDS}
    st.session_state["launch_saved"] = (values, st.session_state["launch_pair"])
    st.session_state["launch_errors"] = {}
    try:
        cfg = SearchConfig.from_dict(_form_values())
        if st.session_state["launch_pair"]:
            ids = list(common.manager().launch_pair(cfg))
            st.session_state["launch_target"] = ("pages/compare.py", {"runs": ",".join(ids)})
        else:
            run_id = common.manager().launch(cfg)
            st.session_state["launch_target"] = ("pages/live.py", {"run": run_id})
    except ConfigError as e:
        field = e.field if e.field in FIELDS else ""
        st.session_state["launch_errors"] = {field: str(e)}
    except (DataError, StoreError, RuntimeError) as e:
        st.session_state["launch_errors"] = {"": str(e)}


def _field(name: str, errors: dict[str, str]) -> None:
    meta = FIELDS[name]
    label, key, help_text = name, _key(name), meta["help"]
    if meta["choices"]:
        reg = by_name(meta["choices"])
        help_text += "\n\n" + "\n".join(f"- **{n}**: {reg.help(n)}" for n in reg.names())
        st.selectbox(label, reg.names(), key=key, help=help_text)
    elif meta["type"] == "bool":
        st.checkbox(label, key=key, help=help_text)
    elif meta["type"] == "int":
        st.number_input(label, step=1, key=key, help=help_text)
    else:  # floats as text, so 3e-4 can be typed as such; the engine parses and checks
        st.text_input(label, key=key, help=help_text)
    if name in errors:
        st.error(errors[name], icon=":material/error:")


# --- sweep mode -------------------------------------------------------------------------------
def _values_key(name: str) -> str:
    return f"launch_sweep_values_{name}"


def _sweep_controls() -> dict[str, Any]:
    """The sweep inputs as they stand (outside the form: the run count follows them)."""
    fields = list(st.session_state.get("launch_sweep_fields", []))
    return {"fields": fields,
            "values": {f: str(st.session_state.get(_values_key(f), "")) for f in fields},
            "seeds": str(st.session_state.get("launch_sweep_seeds", "0-2")),
            "name": str(st.session_state.get("launch_sweep_name", "")).strip(),
            "executor": st.session_state.get("launch_sweep_executor", "local"),
            "address": str(st.session_state.get("launch_sweep_address", "")).strip(),
            "concurrent": int(st.session_state.get("launch_sweep_concurrent", 2))}


def _grid(controls: dict[str, Any]) -> dict[str, list[str]]:
    """field -> its values as text (SearchConfig coerces them); ConfigError naming the field."""
    grid = {}
    for name in controls["fields"]:
        text = controls["values"][name].strip()
        items = [v.strip() for v in text.split(",")]
        if not text:
            raise ConfigError(f"{name}: give its values, separated by commas (e.g. "
                              f"{_example(name)})", field=name)
        if "" in items:
            raise ConfigError(f"{name}: an empty value in {text!r}; separate values with single "
                              "commas", field=name)
        grid[name] = items
    return grid


def _example(name: str) -> str:
    meta = FIELDS[name]
    if meta["choices"]:
        return ",".join(by_name(meta["choices"]).names()[:2])
    if meta["type"] == "bool":
        return "true,false"
    return "1e-3,3e-3" if meta["type"] == "float" else "1,2"


def _fingerprint(controls: dict[str, Any], base: dict[str, Any]) -> str:
    return json.dumps([controls, base], sort_keys=True, default=str)


def _route(e: ConfigError, swept: list[str]) -> None:
    """Show a refusal next to the input it names: a sweep input, else the form's field."""
    sweep_inputs = {*swept, "grid", "seeds", "seed", "executor", "ray_address"}
    if e.field in sweep_inputs:
        st.session_state["launch_sweep_errors"] = {e.field: str(e)}
    else:
        st.session_state["launch_errors"] = {e.field if e.field in FIELDS else "": str(e)}


def _check_sweep() -> None:
    """Form callback in Sweep mode: expand and check every run, estimate its time. Queues
    nothing; the plan it keeps is what Start launches."""
    st.session_state["launch_saved"] = ({n: st.session_state[_key(n)] for n in FIELDS},
                                        st.session_state.get("launch_pair", False))
    st.session_state["launch_errors"] = {}
    st.session_state["launch_sweep_errors"] = {}
    st.session_state.pop("launch_sweep_plan", None)
    controls = _sweep_controls()
    try:
        if not controls["fields"]:
            raise ConfigError("pick at least one field to sweep", field="grid")
        base = _form_values()
        spec = SweepSpec(base=base, grid=_grid(controls), seeds=parse_seeds(controls["seeds"]))
        runs = expand(spec)
    except ConfigError as e:
        _route(e, controls["fields"])
        return
    except (DataError, StoreError) as e:
        st.session_state["launch_errors"] = {"": str(e)}
        return
    st.session_state["launch_sweep_plan"] = {
        "spec": spec.to_dict(), "runs": len(runs), "points": len(runs) // len(spec.seeds),
        "seeds": len(spec.seeds), "estimate": _estimate([r.config for r in runs], controls),
        "fingerprint": _fingerprint(controls, st.session_state["launch_saved"][0])}


def _epoch_times(store: RunStore) -> dict[tuple[Any, ...], tuple[str, float]]:
    """Cost key (COST_FIELDS) -> (run id, mean epoch time in s) of the newest completed run
    with that key, among the newest SCANNED_RUNS completed ones."""
    runs = store.list_runs()
    done = runs.loc[runs["status"] == RunState.COMPLETED.value, "id"].head(SCANNED_RUNS)
    times: dict[tuple[Any, ...], tuple[str, float]] = {}
    for run_id in done:
        key = tuple(store.get_run(run_id)["config"].get(f) for f in COST_FIELDS)
        if key in times:
            continue
        t = store.epoch_metrics(run_id)["epoch_time"].to_numpy(np.float64)
        if np.isfinite(t).any():
            times[key] = (run_id, float(np.nanmean(t)))
    return times


def _estimate(configs: list[SearchConfig], controls: dict[str, Any]) -> str:
    """Σ over runs of epochs × the measured mean epoch time of a finished run of the same cost;
    unknown when some run has no such measurement."""
    times = _epoch_times(common.store())
    total, sources, missing = 0.0, set(), 0
    for cfg in configs:
        found = times.get(tuple(getattr(cfg, f) for f in COST_FIELDS))
        if found is None:
            missing += 1
            continue
        total += cfg.epochs * found[1]
        sources.add(found[0])
    if missing:
        return ("Estimated time: unknown until the first run finishes (no finished run in the "
                f"store has the same {', '.join(COST_FIELDS)} as {missing} of these runs).")
    at_once = min(len(configs), _concurrency(controls))
    return (f"Estimated time: about {format_duration(total / at_once)} with {at_once} at a time "
            f"({format_duration(total)} of run time: each run's epochs × the mean epoch time of "
            f"finished run {', '.join(sorted(sources))} of the same cost; the machine's cores "
            "are shared by the runs that go at once).")


def _concurrency(controls: dict[str, Any]) -> int:
    return (controls["concurrent"] if controls["executor"] == "ray"
            else common.manager().max_concurrent)


@st.cache_resource(show_spinner=False, on_release=lambda m: m.shutdown())
def _ray_manager(home: str, address: str, max_concurrent: int) -> RunManager:
    """One Ray-executor run manager per (store, address, concurrency) in this server process;
    address "" starts a local Ray instance. Local sweeps use the server's one manager."""
    mgr = RunManager(common.store(), max_concurrent=max_concurrent, executor="ray",
                     ray_address=address or None, mark_orphans=False)
    common.add_manager(mgr)   # its runs count as live for the Runs / Live / Compare pages
    return mgr


def _start_sweep() -> None:
    """Start button: queue the checked plan, then open its Sweep page."""
    plan, controls = st.session_state.get("launch_sweep_plan"), _sweep_controls()
    if plan is None:
        return
    try:
        if controls["executor"] == "ray":
            mgr = _ray_manager(str(common.store().home), controls["address"],
                               controls["concurrent"])
        else:
            mgr = common.manager()
        sweep_id = launch_sweep(mgr, SweepSpec.from_dict(plan["spec"]), controls["name"])
    except ConfigError as e:
        _route(e, controls["fields"])
        return
    except (DataError, StoreError, RuntimeError) as e:
        st.session_state["launch_errors"] = {"": str(e)}
        return
    st.session_state.pop("launch_sweep_plan")
    st.session_state["launch_target"] = ("pages/sweep.py", {"sweep": sweep_id})


def _live_count(controls: dict[str, Any]) -> str:
    """"3 points × 2 seeds = 6 runs" from the inputs as typed (checked fully by Check)."""
    try:
        points = math.prod(len(v) for v in _grid(controls).values())
        seeds = len(parse_seeds(controls["seeds"]))
    except ConfigError:
        return "Fill in every swept field's values and the seeds to see the run count."
    n = points * seeds
    over = f" (more than the {MAX_RUNS} a sweep may have)" if n > MAX_RUNS else ""
    return f"{points} points × {seeds} seeds = **{n} runs**{over}"


def sweep_panel(errors: dict[str, str]) -> None:
    """The sweep's own inputs; the form below is its base config."""
    def error(name: str) -> None:
        if name in errors:
            st.error(errors[name], icon=":material/error:")

    st.multiselect("Fields to sweep (up to 3)", SWEEPABLE, key="launch_sweep_fields",
                   max_selections=MAX_SWEPT, placeholder="Pick config fields, e.g. arch_lr",
                   help="Every combination of their values runs once per seed. The form below "
                        "sets every other field.")
    error("grid")
    fields = st.session_state.get("launch_sweep_fields", [])
    if fields:
        cols = st.columns(len(fields))
        for col, name in zip(cols, fields, strict=True):
            with col:
                st.text_input(f"{name} values", key=_values_key(name),
                              placeholder=f"e.g. {_example(name)} (the form has "
                                          f"{st.session_state.get(_key(name))})",
                              help=f"Comma-separated, as `--grid {name}=...` takes them. "
                                   f"{FIELDS[name]['help']}")
                error(name)
    left, mid, right = st.columns(3)
    with left:
        st.text_input("Seeds", value="0-2", key="launch_sweep_seeds",
                      help="A range 0-4, a list 0,1,5, or both: 0-2,7. Replaces the form's seed.")
        error("seeds")
        error("seed")
    with mid:
        executors = ["local", "ray"] if importlib.util.find_spec("ray") else ["local"]
        executor = st.radio("Run on", executors, key="launch_sweep_executor", horizontal=True,
                            help="local: this server's run manager. ray: each run on a Ray "
                                 "worker (a cluster's, or a Ray instance started here).")
        if executor == "ray":
            st.text_input("Ray address", key="launch_sweep_address",
                          placeholder="empty: start Ray on this machine",
                          help="auto (a `ray start` on this machine) or ray://host:10001.")
        error("executor")
        error("ray_address")
    with right:
        if executor == "ray":
            st.number_input("Runs at a time", min_value=1, max_value=64, value=2, step=1,
                            key="launch_sweep_concurrent")
        else:
            st.caption(f"This server runs {common.manager().max_concurrent} runs at a time; "
                       "the sweep's runs queue behind those already running.")
        st.text_input("Sweep name", key="launch_sweep_name", placeholder="optional")
    st.markdown(_live_count(_sweep_controls()))
    plan = st.session_state.get("launch_sweep_plan")
    base = (st.session_state.get("launch_saved") or ({},))[0]
    if plan and plan["fingerprint"] != _fingerprint(_sweep_controls(), base):
        st.session_state.pop("launch_sweep_plan")  # the inputs changed since the check
        plan = None
    if plan:
        st.success(f"Checked: {plan['points']} points × {plan['seeds']} seeds = "
                   f"{plan['runs']} runs, every config valid. {plan['estimate']}",
                   icon=":material/check_circle:")
        st.button(f"Start {plan['runs']} runs", key="launch_sweep_start", type="primary",
                  on_click=_start_sweep, icon=":material/play_arrow:")
    else:
        st.caption("Check the sweep (below) to see its run count and estimated time; nothing "
                   "is queued until you press Start.")


# --- where a successful launch goes ----------------------------------------------------------
if target := st.session_state.pop("launch_target", None):
    st.switch_page(target[0], query_params=target[1])

common.require_app()
st.header("Launch a search")
st.caption("Pick a preset and press Start, or change any field first: every field has the "
           "engine's default and its help on the (?) icon. Runs are kept in "
           f"`{common.store().home}`, where the CLI writes too.")

if "launch_preset" not in st.session_state:
    st.session_state["launch_preset"] = DEFAULT_PRESET
if _key("space") not in st.session_state:  # first visit, or back from another page
    saved = st.session_state.get("launch_saved")
    if saved:
        _seed(*saved)
    else:
        _apply_preset()

preset = st.selectbox("Preset", list(PRESETS), key="launch_preset", on_change=_apply_preset,
                      help="Fills in the form; change anything before starting.")
chosen = PRESETS[preset]
st.caption(chosen.description.replace("\n", "  \n"))  # its lines stay lines in markdown
# Always one slot here, filled or not: the form below keeps its place in the page's element
# tree when the preset changes, so the browser never shows the old form beside the new one.
with st.container():
    if chosen.measured:
        with st.expander("What we measured", icon=":material/science:"):
            st.markdown(chosen.measured)
            if chosen.reproduce:
                st.caption("To measure it again, from the repository folder:")
                st.code(chosen.reproduce, language="bash")

mode = st.segmented_control("What to launch", MODES, key="launch_mode", default=MODES[0],
                            required=True,
                            help="One run (or a pair), or a sweep: a grid of values of up to "
                                 "three fields × a set of seeds, the form as its base config.")
sweeping = mode == "Sweep"
with st.container():  # one slot, filled in Sweep mode only: the form keeps its place
    if sweeping:
        sweep_panel(st.session_state.get("launch_sweep_errors", {}))

errors: dict[str, str] = st.session_state.get("launch_errors", {})
groups: dict[str, list[str]] = {}
for name, meta in FIELDS.items():
    groups.setdefault(meta["group"], []).append(name)

with st.form("launch_form", border=False):
    # Start first: the presets are meant to be run as they are; the fields are below.
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.checkbox("Launch as a pair: the same config and seed once bi-level and once "
                  "single-level, side by side", key="launch_pair", disabled=sweeping,
                  help="The bi-level run uses the chosen algorithm (bilevel-1st if 'single' "
                       "is chosen); the other run is Single-DARTS. Opens the comparison.")
    if sweeping:  # the form is the sweep's base config
        right.form_submit_button("Check sweep", on_click=_check_sweep, width="stretch",
                                 icon=":material/fact_check:")
    else:
        right.form_submit_button("Start", type="primary", on_click=_submit, width="stretch",
                                 icon=":material/play_arrow:")
    if "" in errors:
        st.error(errors[""], icon=":material/error:")
    elif errors:
        st.error("Nothing was started: fix the field marked below.", icon=":material/error:")
    for group, names in groups.items():
        title = GROUP_TITLES.get(group, group.title())
        with st.expander(title, expanded=group in OPEN_GROUPS or any(n in errors for n in names)):
            cols = st.columns(3)
            for i, name in enumerate(names):
                with cols[i % 3]:
                    _field(name, errors)

common.warm_up()  # after the form is on screen: the engine's one-time imports, in the background
