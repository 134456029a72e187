"""Tables for comparing runs: the genotype diff node by node, the config fields that differ,
the summary table (accuracy, skip counts, parameter-free mass, wall time) and durations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..model.genotype import CellTopology, count_ops, genotype_ops, parse_genotype, softmax
from .alphas import param_free_mass
from .cells import node_name


def genotype_diff(genotypes: Mapping[str, str], ops: Sequence[str]) -> pd.DataFrame:
    """One row per (cell, node), one column per run: the node's kept inputs as `op ← input`,
    sorted by input (so the order of DARTS' top-2 does not count as a difference), plus a
    `differs` column. Genotypes that cannot be read show as empty."""
    parsed: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    topology: CellTopology | None = None
    for label, text in genotypes.items():
        try:
            g = parse_genotype(text, ops=ops)
        except ValueError:
            parsed[label] = {}
            continue
        topology = topology if topology is not None and topology.darts_cell else g.topology
        parsed[label] = genotype_ops(g)
    order = list(topology.cell_types) if topology is not None else []
    keys = sorted({(cell, t) for cells in parsed.values() for cell, edges in cells.items()
                   for _, _, t in edges},
                  key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k))
    rows = []
    for cell, t in keys:
        row: dict[str, Any] = {"cell": cell, "node": node_name(t, topology)}
        for label, cells in parsed.items():
            kept = sorted((j, op) for op, j, target in cells.get(cell, []) if target == t)
            row[label] = ", ".join(f"{op} ← {node_name(j, topology)}" for j, op in kept)
        row["differs"] = len({row[label] for label in parsed}) > 1
        rows.append(row)
    return pd.DataFrame(rows, columns=["cell", "node", *genotypes, "differs"])


def config_differences(configs: Mapping[str, Mapping[str, Any]],
                       ignore: Sequence[str] = ("name",)) -> list[str]:
    """Config fields whose values differ between the runs, in field order."""
    fields: list[str] = []
    for cfg in configs.values():
        fields += [k for k in cfg if k not in fields and k not in ignore]
    return [k for k in fields if len({repr(c.get(k)) for c in configs.values()}) > 1]


def _in_cell(cell: str) -> str:
    """'in the cell' (NB201's one cell type is named "cell"), 'in the normal cell'."""
    return "in the cell" if cell == "cell" else f"in the {cell} cell"


def summary_table(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Rows = measures, columns = runs. Each run: {"config", "epochs_done", "headline" (the
    run's declared headline metric dict: label, unit, scale, higher_is_better), "values" (that
    metric per epoch), "wall_time" (s), "genotype" (text), "alphas" (cell -> raw, latest), "ops",
    "param_free", "cell" (the cell type to summarise), optionally "normalise"}. Runs with
    different headline metrics get a final/best row each ("–" where a run lacks it). Config
    fields that differ come last as rows named `config · <field>`. Values are display strings."""
    table: dict[str, dict[str, Any]] = {}
    for label, r in runs.items():
        h = r["headline"]
        values = np.asarray(r["values"], dtype=np.float64)
        finite = values[np.isfinite(values)]
        best = (math.nan if not finite.size else
                finite.max() if h.get("higher_is_better", True) else finite.min())
        cell = r["cell"]
        try:
            g = parse_genotype(r["genotype"], ops=r["ops"])
            skips = str(count_ops(g, cell, {"skip_connect"}))
            pf_ops = str(count_ops(g, cell, set(r["param_free"])))
        except ValueError:
            skips = pf_ops = "–"
        alphas = r["alphas"].get(cell)
        pf = (math.nan if alphas is None else
              param_free_mass(alphas, r["ops"], r["param_free"], r.get("normalise", softmax)))
        table[label] = {
            "algorithm": r["config"].get("algorithm", ""),
            "epochs done": f"{r['epochs_done']} / {r['config'].get('epochs', '?')}",
            f"final {h['label']}": _shown(values[-1] if values.size else math.nan, h),
            f"best {h['label']}": _shown(best, h),
            f"skip_connect {_in_cell(cell)}": skips,
            f"parameter-free ops {_in_cell(cell)}": pf_ops,
            f"parameter-free α mass ({cell})": "–" if math.isnan(pf) else f"{pf:.2f}",
            "wall time": format_duration(r["wall_time"]),
        }
    configs = {label: r["config"] for label, r in runs.items()}
    for name in config_differences(configs):
        if name == "algorithm":
            continue
        for label in runs:
            table[label][f"config · {name}"] = str(configs[label].get(name))
    return pd.DataFrame(table).fillna("–")


def _shown(x: float, metric: Mapping[str, Any]) -> str:
    """A recorded (unscaled) value as displayed: times the metric's scale, with its unit."""
    if x is None or not np.isfinite(x):
        return "–"
    return f"{float(metric.get('scale', 1.0)) * x:.1f}{metric.get('unit', '')}"


def format_duration(seconds: float | None) -> str:
    """`1m 05s`, `2h 03m`, or `–` for unknown."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    s = round(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"
