"""The collapse demo answers its own question: does the collapsed cell train worse? The pair's
bi-level and single-level final cells, and one reference cell (NB201 all 3×3 conv), are each
retrained from scratch with one recipe and seed (train/retrain.py) as retrain runs; their final
held-out test accuracies, and each cell's accuracy in a configured truth table (NAS-Bench-201,
or the labelled proxy), are plain data here for the Compare page and benchmarks/collapse_demo.py.

A pair is two completed searches whose configs differ only in the algorithm, one single-level
(RunManager.launch_pair). A demo retrain is found in the store, not remembered: a retrain of the
cell (its source run for the pair's cells) whose recipe config equals `demo_recipe` of the pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError
from ..train.retrain import RetrainConfig, preset
from ..truth.base import TruthError, TruthTable
from .kinds import REFERENCE_CELLS, RETRAIN, recipe_for, run_kind, split_retrain_config
from .manager import RunManager
from .pairs import pair_of
from .states import RunState
from .store import RunStore

ROLES = ("bi-level", "single-level", "reference")
REFERENCE_RECIPE = "nb201"  # the demo searches NB201 cells; its reference is all 3×3 conv


@dataclass(frozen=True)
class DemoCell:
    """One of the demo's three cells and its retrain (None/"" until launched)."""

    role: str                       # one of ROLES
    label: str                      # what the text calls it
    genotype: str
    retrain_id: str | None = None
    status: str = ""                # the retrain's run state
    test_acc: float | None = None   # final held-out test accuracy, a fraction, once completed
    truth: float | None = None      # the table's CIFAR-10 test accuracy, percent
    truth_protocol: str = ""        # where `truth` comes from (the proxy says it is one)


def demo_pair(runs: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """(bi-level id, single-level id) when `runs` (store.get_run rows) are exactly two completed
    searches that form a pair (runs/pairs.py); else None."""
    if len(runs) != 2 or any(not r.get("genotype") or r["status"] != RunState.COMPLETED.value
                             for r in runs):
        return None
    return pair_of(*runs)


def demo_recipe(search: dict[str, Any]) -> RetrainConfig:
    """The recipe every cell of the demo retrains with: the one for the search's cell kind at
    its CPU preset, on the search's dataset, with the search's seed."""
    cfg = search["config"]
    return preset(recipe_for(search["genotype"]), dataset=cfg.get("dataset", "digits"),
                  seed=int(cfg.get("seed", 0)))


def _cells(bi: dict[str, Any], single: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """(role, label, genotype, source run) of the three cells."""
    label, reference = REFERENCE_CELLS[REFERENCE_RECIPE]
    return [("bi-level", "bi-level cell", bi["genotype"], bi["id"]),
            ("single-level", "single-level cell", single["genotype"], single["id"]),
            ("reference", f"reference ({label})", reference, None)]


def launch_demo_retrains(mgr: RunManager, bi_id: str, single_id: str) -> list[str]:
    """Retrain the pair's final cells and the reference cell, one recipe and seed (demo_recipe
    of the bi-level run); returns the three retrain run ids in ROLES order."""
    bi, single = mgr.store.get_run(bi_id), mgr.store.get_run(single_id)
    cfg = demo_recipe(bi)
    ids = []
    for role, label, genotype, source in _cells(bi, single):
        run = bi if source == bi_id else single
        epoch = None if source is None else int(run["epochs_done"]) - 1
        ids.append(mgr.launch_retrain(cfg, genotype, source_run=source, source_epoch=epoch,
                                      name=f"retrain · demo {role} cell"))
    return ids


def _final_test_acc(store: RunStore, run_id: str) -> float | None:
    epochs = store.epoch_metrics(run_id)
    if "test_acc" not in epochs or epochs.empty:
        return None
    return float(epochs["test_acc"].iloc[-1])


def _truth(table: TruthTable | None, genotype: str) -> tuple[float | None, str]:
    if table is None:
        return None, ""
    try:
        entry = table.query(genotype)
    except TruthError:  # not in the table: no value, not an error
        return None, ""
    value = entry.test.get("cifar10")
    return (None, "") if value is None else (float(value), entry.protocol)


def demo_cells(store: RunStore, bi_id: str, single_id: str,
               table: TruthTable | None = None) -> list[DemoCell]:
    """The demo's three cells with their newest demo retrain (if any): its state and, once
    completed, its final test accuracy; and each cell's truth-table accuracy."""
    bi, single = store.get_run(bi_id), store.get_run(single_id)
    want = demo_recipe(bi).to_dict()
    retrains = []  # newest first, as list_runs
    declared = store.declarations()
    for row in store.list_runs().itertuples(index=False):
        if row.id not in declared:  # deleted since the listing was read
            continue
        run = {"id": row.id, "status": row.status, "config": declared[row.id]["config"]}
        if run_kind(run["config"]) != RETRAIN:
            continue
        try:
            cfg, genotype = split_retrain_config(run["config"])
        except (ConfigError, KeyError):
            continue
        if cfg.to_dict() == want:
            retrains.append((run, genotype))
    cells = []
    for role, label, genotype, source in _cells(bi, single):
        found = next((r for r, g in retrains
                      if g == genotype and r["config"].get("source_run") == source), None)
        truth, protocol = _truth(table, genotype)
        if found is None:
            cells.append(DemoCell(role, label, genotype, truth=truth, truth_protocol=protocol))
            continue
        done = found["status"] == RunState.COMPLETED.value
        cells.append(DemoCell(role, label, genotype, found["id"], found["status"],
                              _final_test_acc(store, found["id"]) if done else None,
                              truth, protocol))
    return cells


def demo_text(cells: Sequence[DemoCell]) -> str:
    """The demo's answer in a few lines of Markdown: measured test accuracies (or the retrains'
    states) once retrains exist, then the table's accuracies with the table named; "" when
    there is neither."""
    lines = []
    if any(c.retrain_id for c in cells):
        parts = [f"{c.label} **{100 * c.test_acc:.1f}%**" if c.test_acc is not None
                 else f"{c.label} {c.status or 'not retrained'}" for c in cells]
        lines.append("Retrained from scratch, same recipe and seed, test accuracy on held-out "
                     "data: " + "; ".join(parts) + ".")
    known = [c for c in cells if c.truth is not None]
    if known:
        protocol = "; ".join(dict.fromkeys(c.truth_protocol for c in known))
        lines.append(f"CIFAR-10 test accuracy in the table ({protocol}): "
                     + "; ".join(f"{c.label} {c.truth:.2f}%" for c in known) + ".")
    return "\n\n".join(lines)
