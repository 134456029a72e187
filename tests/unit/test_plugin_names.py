"""No page and no shared engine module tests a method's or a task's name, and none looks an
artifact up by a method's name prefix: plug-ins carry their own special cases and declare their
artifacts, and the read side finds them by kind (issue 13, "Done when")."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = [*(p for d in ("pages", "darts_engine/runs", "darts_engine/viz", "darts_engine/monitor")
            for p in sorted((ROOT / d).glob("*.py"))), ROOT / "darts_engine/search.py"]
NAMES = ("lfr-darts", "pc-darts", "sdarts-rs", "ms-darts", "classification")
# a name compared with ==/!=/in, or looked up by a literal, e.g. METHODS.get("lfr-darts")
_USE = re.compile(r"""(==|!=|\bin\b|\.get\()\s*\(?\s*["'](%s)["']|["'](%s)["']\s*(==|!=|\bin\b)"""
                  % ("|".join(map(re.escape, NAMES)), "|".join(map(re.escape, NAMES))))


# The read side: it finds artifacts through the run's declaration, never by a name prefix. The
# store is not among them: its one-off migration of old runs maps legacy names to kinds.
READERS = [*(p for d in ("pages", "darts_engine/viz", "darts_engine/monitor")
             for p in sorted((ROOT / d).glob("*.py"))),
           ROOT / "darts_engine/runs/views.py", ROOT / "darts_engine/search.py"]
PREFIXES = ("beta_", "edge_weight_", "lfr_cells_", "lfr_stage")
# a string literal (plain or f-string) that starts with one of the prefixes
_PREFIX = re.compile(r"""["'](%s)""" % "|".join(map(re.escape, PREFIXES)))


def prefixed(text: str) -> list[str]:
    return [m.group(0) for m in _PREFIX.finditer(text)]


def uses(text: str) -> list[str]:
    return [m.group(0) for m in _USE.finditer(text)]


def test_the_pattern_catches_a_comparison_and_lets_help_text_be():
    assert uses('if cfg.get("method") == "lfr-darts":')
    assert uses("label = METHODS.get('pc-darts').label")
    assert uses('if method in ("sdarts-rs", "x"):')
    assert uses('"classification" == task')
    assert not uses('help="PC-DARTS partial channels (pc-darts) sample 1/K of the channels"')


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shared_module_tests_a_plugin_name(path):
    assert not uses(path.read_text()), f"{path.relative_to(ROOT)} tests a plug-in's name"


def test_the_prefix_pattern_catches_a_lookup_by_name_and_lets_a_kind_be():
    assert prefixed('s.extras_history(run_id, f"beta_{cell}")')
    assert prefixed("view.lfr['lfr_stage']")
    assert prefixed('name = "edge_weight_" + cell')
    assert not prefixed('view.artifacts.get("edge_weights")')
    assert not prefixed("kind == 'stage_cells'")


@pytest.mark.parametrize("path", READERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reader_finds_an_artifact_by_its_name_prefix(path):
    assert not prefixed(path.read_text()), (
        f"{path.relative_to(ROOT)} looks an artifact up by name; use the run's declared "
        "artifacts by kind (RunView.edge_weights / betas / stage / stage_cells)")
