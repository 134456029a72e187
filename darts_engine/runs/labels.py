"""What the pages call things: indicator keys and their labels and help, the indicators shown by
default, alert rules by name, and a run's label in pickers. Plain data, no Streamlit (pages reach
these through pages/common.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..monitor.alerts import rule_docs
from ..monitor.indicators import indicator_docs, split_key
from ..registries import SPACES


def indicator_keys(columns: Iterable[str]) -> list[str]:
    """The indicator keys ('skip_mass.cell', 'disc_gap') among epoch_metrics columns
    ('ind_skip_mass.cell', ...), in registry order."""
    order = {d["name"]: i for i, d in enumerate(indicator_docs())}
    keys = [c[len("ind_"):] for c in columns if c.startswith("ind_")]
    keys = [k for k in keys if k.partition(".")[0] in order]
    return sorted(keys, key=lambda k: (order[k.partition(".")[0]], k))


# Shown by default on the live page (the rest one click away): the collapse signature the
# literature describes (RobustDARTS, DARTS+, SDARTS; PF/skip/none mass apart, decidedness,
# λmax, discretisation gap) and whether α still moves at all (single-level on memorised data
# stops moving, not collapsing).
HEADLINE_INDICATORS = ("skip_count", "pf_count", "pf_mass", "skip_mass", "none_mass", "entropy",
                       "margin", "hessian_eig", "disc_gap", "train_val_gap", "alpha_grad_norm")


def headline_indicators(keys: Iterable[str], space: str) -> list[str]:
    """The headline indicators among keys, for the space's headline cell only (DARTS: normal;
    NB201's one cell) plus those about the whole network."""
    keys = list(keys)
    first = SPACES.get(space).headline if space in SPACES else None
    return [k for k in keys if split_key(k)[0].name in HEADLINE_INDICATORS
            and split_key(k)[1] in (None, first)]


def indicator_label(key: str) -> str:
    """'skip_mass.normal' -> 'skip_connect mass (normal cell)'; NB201's one cell: no suffix."""
    indicator, cell = split_key(key)
    return indicator.title if cell in (None, "cell") else f"{indicator.title} ({cell} cell)"


def indicator_help(key: str) -> str:
    """The student-level explanation: what it measures, what collapse looks like, source, and
    a link to the Guide's indicator section."""
    doc = split_key(key)[0].doc()
    return (f"{doc['what']}\n\n**Collapse:** {doc['collapse']}\n\n*Source:* {doc['source']}. "
            "More in the [Guide](/guide#indicators).")


def alert_rule(name: str) -> dict[str, str]:
    """rule_docs() entry of a fired alert's rule (name only if the rule is unknown)."""
    return next((r for r in rule_docs() if r["name"] == name),
                {"name": name, "title": name, "source": "", "explanation": ""})


def run_label(row: Any) -> str:
    """`name — space/dataset (id)` for pickers; row: a list_runs row or run dict."""
    cfg = row.get("config") or {}
    algorithm = row.get("algorithm") or cfg.get("algorithm", "")
    space = row.get("space") or cfg.get("space", "")
    dataset = row.get("dataset") or cfg.get("dataset", "")
    name = row.get("name") or algorithm
    return f"{name} — {space}/{dataset} ({row['id']})"
