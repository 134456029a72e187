"""Presets as a lecturer meets them: a description read in five seconds, the measured numbers one
click away on the launch page, and the compare page opening on the indicator the preset is about.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from darts_engine.monitor.indicators import INDICATORS
from darts_engine.runs.store import RunStore
from darts_engine.train.presets import (
    DEFAULT_INDICATOR,
    DEFAULT_PRESET,
    PRESETS,
    preset_of,
    preset_values,
    story_indicator,
)
from tests.helpers import record, tiny

ROOT = Path(__file__).resolve().parents[2]
DEMO, DARTS = DEFAULT_PRESET, "DARTS paper settings (CIFAR-10)"
MAX_LINES, MAX_LINE = 3, 90  # "at most three short lines"


# --- the presets themselves ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_description_is_at_most_three_short_lines(name):
    lines = PRESETS[name].description.split("\n")
    assert 1 <= len(lines) <= MAX_LINES, lines
    assert all(0 < len(line) <= MAX_LINE for line in lines), [len(line) for line in lines]


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_names_a_registered_indicator_and_cites_no_internal_file(name):
    preset = PRESETS[name]
    assert preset.indicator in INDICATORS.names()
    assert bool(preset.measured) == bool(preset.reproduce)  # numbers come with their command
    for text in (preset.description, preset.measured, preset.reproduce):
        assert "ALGORITHMS.md" not in text


def test_collapse_demo_is_about_none_mass_and_says_how_it_was_measured():
    """The measured text's structure, not its numbers (they go stale with the engine): the
    default seed, both runs of the pair, measured values as `a → b`, and a command a new user
    can paste (the README installs into .venv, so a bare `python` may not have torch)."""
    demo = PRESETS[DEMO]
    assert demo.indicator == "none_mass"
    text = demo.measured
    assert f"seed {preset_values(DEMO)['seed']} (the default)" in text.lower()
    assert "**bi-level**" in text.lower() and "**single-level**" in text.lower()
    assert re.search(r"\d\.\d+ → \d\.\d+", text)
    argv = shlex.split(demo.reproduce)
    assert argv[0] == ".venv/bin/python" and (ROOT / argv[1]).is_file()


def test_a_run_is_traced_to_its_preset_by_name_then_by_settings():
    demo = preset_values(DEMO)
    assert preset_of(demo) == DEMO
    assert preset_of({**demo, "algorithm": "single"}) == DEMO          # the pair's other half
    renamed = {**preset_values(DARTS), "name": "my run"}
    assert preset_of(renamed) == DARTS                                # by its settings
    assert preset_of({**renamed, "epochs": 7}) is None                # changed: no preset
    assert preset_of(tiny().to_dict()) is None
    assert story_indicator([demo, {**demo, "algorithm": "single"}]) == "none_mass"
    assert story_indicator([preset_values(DARTS)] * 2) == "skip_mass"
    assert story_indicator([demo, preset_values(DARTS)]) == DEFAULT_INDICATOR  # two stories
    assert story_indicator([tiny().to_dict()] * 2) == DEFAULT_INDICATOR == "pf_mass"


# --- the pages ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """Two pairs of tiny runs: one carrying the collapse demo's run name, one the DARTS
    preset's (the compare page traces runs to presets by that name)."""
    home = tmp_path_factory.mktemp("presets") / "runs"
    s = RunStore(home)
    ids = {}
    for key, title in (("demo", DEMO), ("darts", DARTS)):
        name = PRESETS[title].overrides["name"]
        ids[key] = [record(s, tiny(algorithm=a, name=name), f"{name} · {a}")
                    for a in ("bilevel-1st", "single")]
    s.close()
    return home, ids


def test_launch_shows_the_short_description_and_what_we_measured(app):
    at = app()
    assert at.selectbox(key="launch_preset").value == DEMO
    captions = [c.value for c in at.caption]
    assert PRESETS[DEMO].description.replace("\n", "  \n") in captions
    measured = [e for e in at.expander if e.label == "What we measured"]
    assert len(measured) == 1
    assert any(m.value == PRESETS[DEMO].measured for m in measured[0].markdown)
    assert [c.value for c in measured[0].code] == [PRESETS[DEMO].reproduce]

    at.selectbox(key="launch_preset").set_value("Quick look (seconds)").run()
    assert not [e for e in at.expander if e.label == "What we measured"]  # nothing measured


def test_compare_opens_on_the_indicator_of_the_runs_preset(app, home, filled):
    shutil.copytree(filled[0], home)
    ids = filled[1]
    at = app("pages/compare.py", runs=",".join(ids["demo"]))
    assert at.selectbox(key="compare_indicator").value == "none_mass.cell"  # not skip mass
    at.selectbox(key="compare_indicator").set_value("entropy.cell").run()
    assert at.selectbox(key="compare_indicator").value == "entropy.cell"  # a choice sticks

    at.multiselect(key="compare_runs").set_value(ids["darts"]).run()      # another preset's runs
    assert at.selectbox(key="compare_indicator").value == "skip_mass.cell"

    at.multiselect(key="compare_runs").set_value([ids["demo"][0], ids["darts"][0]]).run()
    assert at.selectbox(key="compare_indicator").value == f"{DEFAULT_INDICATOR}.cell"
