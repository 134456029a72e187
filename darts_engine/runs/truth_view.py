"""NAS-Bench-201 ground truth per epoch of a search: the true test accuracy of the cell the run
derived at each epoch (Dong & Yang 2020, NAS-Bench-201 §2: every cell of the space trained
200 epochs), looked up by arch string in a configured truth table (truth/). Plain data for the
pages; the figure is viz/truth.py.

A run qualifies when its space uses the NAS-Bench-201 cell (`space.topology`) and its genotypes
parse as NB201 cells; an arch the table has no row for (an op the benchmark lacks, a partial
table) is NaN, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..model.genotype import NB201_CELL, NB201Genotype
from ..registries import SPACES
from ..truth.base import DATASETS, TruthEntry, TruthError, TruthTable


@dataclass(frozen=True)
class TruthSeries:
    """Per epoch of a run: the derived cell's true test accuracy, percent, NaN where unknown."""

    epochs: np.ndarray                  # (E,) 0-based epoch numbers, as in the epochs frame
    archs: tuple[str, ...]              # (E,) the derived arch string ("" where none)
    test: dict[str, np.ndarray]         # dataset (truth.base.DATASETS) -> (E,) percent
    protocol: str                       # the table's protocol text ("" if nothing was found)
    missing: tuple[str, ...] = ()       # arch strings derived but not in the table

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets with a value at some epoch (the proxy has CIFAR-10 only)."""
        return tuple(d for d, v in self.test.items() if np.isfinite(v).any())

    @property
    def found(self) -> bool:
        """True when at least one epoch's cell has a truth value."""
        return bool(self.datasets)


def is_nb201_space(space: str) -> bool:
    """The run's space uses the NAS-Bench-201 cell, so its cells are keys of a truth table."""
    return space in SPACES and SPACES.get(space).topology is NB201_CELL


def _arch(space: str, text: str) -> str:
    """The NB201 arch string of a stored genotype text, "" if it is not an NB201 cell."""
    try:
        g = SPACES.get(space).parse(text)
    except ValueError:
        return ""
    return str(g) if isinstance(g, NB201Genotype) else ""


def truth_series(epochs: pd.DataFrame, space: str, table: TruthTable) -> TruthSeries:
    """The true test accuracy per epoch of `epochs` (a run's epochs frame, `genotype` column)
    for each dataset of `table`; all NaN when `space` is not an NB201-cell space."""
    n = len(epochs)
    ep = (epochs["epoch"].to_numpy(np.int64) if "epoch" in epochs else np.arange(n))
    texts = epochs["genotype"].fillna("").astype(str).tolist() if "genotype" in epochs else []
    nb201 = is_nb201_space(space)
    archs = tuple(_arch(space, t) if nb201 and t else "" for t in texts) or ("",) * n
    test = {d: np.full(n, np.nan) for d in DATASETS}
    found: dict[str, TruthEntry | None] = {}
    for i, arch in enumerate(archs):
        if not arch:
            continue
        if arch not in found:
            try:
                found[arch] = table.query(arch)
            except TruthError:  # not in the table (or an op the benchmark lacks)
                found[arch] = None
        entry = found[arch]
        for d in DATASETS:
            if entry is not None and d in entry.test:
                test[d][i] = float(entry.test[d])
    protocols = dict.fromkeys(e.protocol for e in found.values() if e is not None)
    missing = tuple(a for a, e in found.items() if e is None)
    return TruthSeries(ep, archs, test, "; ".join(protocols), missing)
