"""Launch: a search config form built from the engine's field metadata and registries, with
presets and "launch as a pair" (the same config and seed, bi-level and single-level).

Invalid values are refused by the engine (SearchConfig, then the data checks); the message
appears under the field it names and nothing starts.
"""

from typing import Any

import streamlit as st

from darts_engine import ConfigError, DataError, SearchConfig
from darts_engine.config import field_help
from darts_engine.registries import by_name
from darts_engine.runs.paths import data_root, resolve_inside
from darts_engine.runs.store import StoreError
from darts_engine.train.presets import DEFAULT_PRESET, PRESETS, preset_values
from pages import common

FIELDS = field_help()
GROUP_TITLES = {"search": "What to search", "data": "Data", "network": "Network",
                "schedule": "Schedule", "weights": "Weight optimiser (SGD)",
                "arch": "Architecture optimiser (Adam)", "runtime": "Runtime",
                "indicators": "Collapse indicators and alerts",
                "method": "Method and relaxation (DARTS variants)"}
OPEN_GROUPS = ("search", "data", "network", "schedule")


def _key(name: str) -> str:
    return f"launch_{name}"


def _widget_value(name: str, value: Any) -> Any:
    """Config value -> what its widget holds (floats are typed as text, e.g. 3e-4)."""
    return repr(float(value)) if FIELDS[name]["type"] == "float" else value


def _seed(values: dict[str, Any], pair: bool) -> None:
    for name, value in values.items():
        st.session_state[_key(name)] = _widget_value(name, value)
    st.session_state["launch_pair"] = pair
    st.session_state["launch_errors"] = {}


def _apply_preset() -> None:
    name = st.session_state["launch_preset"]
    _seed(preset_values(name), PRESETS[name].pair)


def _submit() -> None:
    """Form callback: build the config, launch, remember where to go. Errors stay on the page."""
    values = {name: st.session_state[_key(name)] for name in FIELDS}
    st.session_state["launch_saved"] = (values, st.session_state["launch_pair"])
    st.session_state["launch_errors"] = {}
    try:
        # A folder typed here must stay inside the data root (DARTBOARD_DATA, default ./data).
        values["data_root"] = str(resolve_inside(data_root(), values["data_root"], "data_root"))
        cfg = SearchConfig.from_dict(values)
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

errors: dict[str, str] = st.session_state.get("launch_errors", {})
groups: dict[str, list[str]] = {}
for name, meta in FIELDS.items():
    groups.setdefault(meta["group"], []).append(name)

with st.form("launch_form", border=False):
    # Start first: the presets are meant to be run as they are; the fields are below.
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.checkbox("Launch as a pair: the same config and seed once bi-level and once "
                  "single-level, side by side", key="launch_pair",
                  help="The bi-level run uses the chosen algorithm (bilevel-1st if 'single' "
                       "is chosen); the other run is Single-DARTS. Opens the comparison.")
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
