"""Bi-level / single-level pairs: two searches launched together to be compared.

The store marks no pair: RunManager.launch_pair creates the bi-level run and then the
single-level one from one config, so a pair is two searches whose configs differ only in the
algorithm, exactly one of them single-level. Live opens a pair on its bi-level run, Compare on
the newest pair, and the collapse demo's retrains need a finished one (runs/demo.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .kinds import SEARCH, run_kind


def pair_of(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, str] | None:
    """(bi-level id, single-level id) when runs `a` and `b` (mappings with "id" and "config",
    in either order) are a pair; else None."""
    configs = [dict(a["config"]), dict(b["config"])]
    if any(run_kind(c) != SEARCH for c in configs):
        return None
    algos = [c.pop("algorithm", None) for c in configs]
    if configs[0] != configs[1] or algos.count("single") != 1:
        return None
    single = algos.index("single")
    return (a, b)[1 - single]["id"], (a, b)[single]["id"]


def launched_pairs(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(bi-level id, single-level id) of every pair among `runs` (newest first, as the store
    lists them), newest first: a pair is launched in one go, so its runs are neighbours."""
    return [pair for newer, older in zip(runs, runs[1:])
            if (pair := pair_of(newer, older)) is not None]
