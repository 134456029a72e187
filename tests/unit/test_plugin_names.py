"""No page and no shared engine module tests a method's or a task's name: plug-ins carry their
own special cases and pages draw artifacts by kind (issue 13, "Done when")."""

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
