"""The Guide page through AppTest: it opens on its own, lists every registered entry by the
registries (never a hand-written list), and cites no file outside the product."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from darts_engine import ALGORITHMS, INDICATORS, METHODS, RELAXATIONS, SPACES, TASKS
from darts_engine.monitor.alerts import rule_docs

GUIDE = str(Path(__file__).resolve().parents[2] / "pages" / "guide.py")


@pytest.fixture(scope="module")
def guide() -> AppTest:
    at = AppTest.from_file(GUIDE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def page_text(at: AppTest) -> str:
    """Every text element the page shows: headers, captions and markdown."""
    parts = [e.value for kind in ("title", "header", "subheader", "caption", "markdown")
             for e in at.get(kind)]
    return "\n".join(parts)


def test_guide_opens_with_anchored_sections(guide):
    anchors = {h.proto.anchor for h in guide.header}
    assert {"darts", "collapse", "methods", "algorithms", "relaxations", "spaces",
            "indicators", "alerts"} <= anchors


@pytest.mark.parametrize("kind,names,title", [
    ("method", METHODS.names(), lambda n: METHODS.get(n).label),
    ("algorithm", ALGORITHMS.names(), lambda n: ALGORITHMS.help(n) or n),
    ("relaxation", RELAXATIONS.names(), lambda n: n),
    ("space", SPACES.names(), lambda n: n),
    ("task", TASKS.names(), lambda n: TASKS.get(n).label),
    ("indicator", INDICATORS.names(), lambda n: INDICATORS.get(n).title),
    ("alert", [r["name"] for r in rule_docs()],
     lambda n: next(r["title"] for r in rule_docs() if r["name"] == n)),
])
def test_every_registered_entry_is_explained(guide, kind, names, title):
    text = markdown(guide)
    assert names, f"no {kind} registered"
    missing = [n for n in names if f"`{n}`" not in text or title(n) not in text]
    assert not missing, f"{kind}s missing from the Guide: {missing}"


def test_guide_cites_no_file_outside_the_product(guide):
    assert "ALGORITHMS.md" not in page_text(guide)


def test_indicators_with_a_display_unit_say_it_and_the_guide_never_points_to_itself(guide):
    text = markdown(guide)
    shown_in = [n for n in INDICATORS.names() if INDICATORS.get(n).unit]
    assert shown_in, "no indicator declares a display unit"
    for name in shown_in:
        entry = next(m.value for m in guide.markdown if f"`{name}`" in m.value)
        assert "shown in " in entry, name
    assert "see the Guide" not in text          # the page does not send the reader to itself
