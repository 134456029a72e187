"""Early-warning alert rules on the indicator history: DARTS+ (Liang et al. 2019) and
DARTS-ES (Zela et al. 2020, §4), each explained on the dashboard's Guide page.

A rule is data: a name (stored as `AlertRecord.rule`), the paper it comes from, a short
explanation, and a pure condition on the per-epoch indicator rows so far (each row is
{"epoch": e, "<indicator key>": value, ...}, see indicators.py). A rule fires at the epoch its
condition becomes true (not again while it stays true) and names the epoch whose genotype a
"stop" run keeps: by default the last one before the alert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..registries import ALERT_ACTIONS

if TYPE_CHECKING:
    from ..config import SearchConfig

Rows = Sequence[Mapping[str, float]]

# DARTS-ES as RobustDARTS codes it (src/utils.py `EVLocalAvg.update` / `early_stop`, script
# defaults): local averages over the last 5 λmax measurements, each compared with the one
# ES_DELTA *measurements* earlier; the genotype kept is the one at the centre of that earlier
# window, and the rule starts once that kept epoch reaches ES_START_EPOCH.
ES_WINDOW, ES_DELTA, ES_START_EPOCH = 5, 4, 10


@dataclass(frozen=True)
class Condition:
    message: str
    keep_epoch: int                # the genotype a "stop" run keeps is the one of this epoch


@dataclass(frozen=True)
class AlertRule:
    name: str
    title: str
    source: str                    # the paper (the Guide explains the rule; it cites this)
    explanation: str
    check: Callable[[Rows, SearchConfig], Condition | None]


@dataclass(frozen=True)
class Fired:
    rule: str
    message: str
    keep_epoch: int


def _normal_cell(row: Mapping[str, float]) -> str:
    return "normal" if "skip_count.normal" in row else "cell"


def darts_plus_skip(rows: Rows, cfg: SearchConfig) -> Condition | None:
    """DARTS+: at least `alert_skip_count` skip_connect in the derived normal cell."""
    if not rows or cfg.alert_skip_count <= 0:
        return None
    row = rows[-1]
    cell = _normal_cell(row)
    n = row.get(f"skip_count.{cell}", 0.0)
    if n < cfg.alert_skip_count:
        return None
    where = "normal cell" if cell == "normal" else "cell"
    return Condition(f"the derived {where} has {n:.0f} skip_connect edges "
                     f"(DARTS+ stops at {cfg.alert_skip_count})", int(row["epoch"]) - 1)


def darts_plus_stable(rows: Rows, cfg: SearchConfig) -> Condition | None:
    """DARTS+: the ranking of learnable ops on every edge unchanged for `stable_epochs`."""
    if not rows or cfg.stable_epochs <= 0:
        return None
    n = rows[-1].get("rank_stable_epochs", 0.0)
    if n < cfg.stable_epochs:
        return None
    return Condition(f"the ranking of learnable ops has not changed for {n:.0f} epochs: the "
                     f"search has converged (DARTS+ stops after {cfg.stable_epochs})",
                     int(rows[-1]["epoch"]) - 1)


def _local_average(values: Sequence[float], j: int) -> float:
    """Mean of the ES_WINDOW measurements ending at index j (fewer at the start, as the
    reference averages the first ⌈ES_WINDOW/2⌉.. values it has)."""
    return float(np.mean(values[max(0, j - ES_WINDOW + 1): j + 1]))


def darts_es(rows: Rows, cfg: SearchConfig) -> Condition | None:
    """DARTS-ES: local average of λmax now / the one ES_DELTA measurements earlier
    > `alert_es_factor`. With λmax measured every k epochs the local average belongs to the
    epoch at its window's centre (now − k·⌊5/2⌋), the earlier one to 4k epochs before that; that
    earlier epoch is the genotype kept, and the rule holds only once it is ≥ 10."""
    if not rows or cfg.alert_es_factor <= 0:
        return None
    measured = [(int(r["epoch"]), float(r["hessian_eig"])) for r in rows if "hessian_eig" in r]
    now = len(measured) - 1
    then = now - ES_DELTA
    if then - ES_WINDOW // 2 < 0:
        return None
    keep = measured[then - ES_WINDOW // 2][0]   # the centre of the earlier window
    if keep < ES_START_EPOCH:
        return None
    values = [v for _, v in measured]
    lam_now, lam_then = _local_average(values, now), _local_average(values, then)
    if lam_then <= 0 or lam_now / lam_then <= cfg.alert_es_factor:
        return None
    return Condition(f"λmax (mean of the last {ES_WINDOW} measurements) is {lam_now:.3g}, "
                     f"{lam_now / lam_then:.2f}× its local average {ES_DELTA} measurements "
                     f"earlier, around epoch {keep} ({lam_then:.3g}); DARTS-ES stops above "
                     f"{cfg.alert_es_factor:g}×", keep)


def pf_mass_threshold(rows: Rows, cfg: SearchConfig) -> Condition | None:
    """User threshold: parameter-free softmax mass of any cell type above `alert_pf_mass`."""
    if not rows or cfg.alert_pf_mass <= 0:
        return None
    row = rows[-1]
    over = {k.split(".", 1)[1]: v for k, v in row.items()
            if k.startswith("pf_mass.") and v > cfg.alert_pf_mass}
    if not over:
        return None
    cells = ", ".join(f"{c} {v:.2f}" for c, v in over.items())
    return Condition(f"parameter-free mass above {cfg.alert_pf_mass:g} ({cells})",
                     int(row["epoch"]) - 1)


RULES: tuple[AlertRule, ...] = (
    AlertRule("darts+-skip", "DARTS+: ≥ 2 skip connections", "DARTS+ (Liang et al. 2019)",
              "Stop when the derived normal cell (NB201: the cell) has at least "
              "alert_skip_count skip_connect edges: more skips mean a shallower, weaker network.",
              darts_plus_skip),
    AlertRule("darts+-stable", "DARTS+: ranking stable", "DARTS+ (Liang et al. 2019)",
              "Stop when every edge has kept the same order of learnable ops for stable_epochs "
              "epochs: the decision is made, further epochs only let parameter-free ops grow.",
              darts_plus_stable),
    AlertRule("darts-es", "DARTS-ES: curvature rising", "RobustDARTS (Zela et al. 2020, §4)",
              "Stop when the local average of λmax (needs hessian_every > 0) grew by more than "
              "alert_es_factor within 4 measurements: the search is heading into a sharp region "
              "that loses accuracy when discretised.", darts_es),
    AlertRule("pf-mass", "Parameter-free mass threshold", "a threshold you set",
              "Alert when the mean softmax weight on parameter-free ops of any cell type "
              "exceeds alert_pf_mass.", pf_mass_threshold),
)


# What a fired alert does (config `alert_action`; the launch form and the CLI list these).
ALERT_ACTIONS.register("alert", "alert", "record the alert (log, dashboard badge, CLI line); "
                       "the search goes on")
ALERT_ACTIONS.register("stop", "stop", "end the run and keep the genotype derived before the "
                       "alert (DARTS+ / DARTS-ES early stopping)")


def check_alerts(rows: Rows, cfg: SearchConfig) -> list[Fired]:
    """Rules whose condition holds after the last row but did not hold one row earlier."""
    fired = []
    for rule in RULES:
        cond = rule.check(rows, cfg)
        if cond is not None and rule.check(rows[:-1], cfg) is None:
            fired.append(Fired(rule.name, f"{rule.title}: {cond.message}", cond.keep_epoch))
    return fired


def alert_line(epoch: int, rule: str, message: str, action: str = "alert") -> str:
    """One fired alert as one line of text (the CLI prints it): epoch 1-based, as the progress
    lines and the dashboard count, then the message, the rule's source and where it is
    explained (the dashboard's Guide; the Live page links there instead)."""
    source = next((r.source for r in RULES if r.name == rule), "")
    return (f"alert epoch {epoch + 1}: {message}"
            + (f" — {source}; see the dashboard's Guide, Alerts" if source else "")
            + (" · the run stops" if action == "stop" else ""))


def rule_docs() -> list[dict[str, str]]:
    """Name, title, source and explanation of every rule (for the dashboard)."""
    return [{"name": r.name, "title": r.title, "source": r.source,
             "explanation": r.explanation} for r in RULES]
