"""Run kinds, kept in the run's config dict (no store schema change): a search run's config is
a SearchConfig dict (no "kind" key: every run recorded before kinds existed is a search); a
retrain run's is its RetrainConfig dict plus `kind="retrain"`, the genotype text it trains and
the search run/epoch it came from (None for a pasted genotype)."""

from __future__ import annotations

from typing import Any

from ..config import ConfigError
from ..model.spaces import parse_any_genotype
from ..train.retrain import RECIPES, RetrainConfig

SEARCH, RETRAIN = "search", "retrain"
RETRAIN_KEYS = ("kind", "genotype", "source_run", "source_epoch")


def run_kind(config: dict[str, Any]) -> str:
    return str(config.get("kind") or SEARCH)


def retrain_run_config(cfg: RetrainConfig, genotype: str, source_run: str | None = None,
                       source_epoch: int | None = None) -> dict[str, Any]:
    """The config dict a retrain run is recorded with."""
    return {**cfg.to_dict(), "kind": RETRAIN, "genotype": genotype, "source_run": source_run,
            "source_epoch": source_epoch}


def split_retrain_config(config: dict[str, Any]) -> tuple[RetrainConfig, str]:
    """A retrain run's config dict back as (RetrainConfig, genotype text)."""
    return (RetrainConfig.from_dict({k: v for k, v in config.items() if k not in RETRAIN_KEYS}),
            str(config["genotype"]))


def recipe_for(genotype_text: str) -> str:
    """The recipe that retrains this kind of genotype (a DARTS Genotype(...): darts-eval, an
    NB201 arch string: nb201). ConfigError(field="genotype") when the text does not parse."""
    try:
        g = parse_any_genotype(genotype_text)
    except ValueError as e:
        raise ConfigError(f"genotype: {e}", field="genotype") from None
    name = next((name for name, r in RECIPES.items() if isinstance(g, r.genotype)), None)
    if name is None:
        raise ConfigError(f"no retrain recipe trains a {type(g).__name__} yet (retraining is "
                          f"built for classification cells); the run records its derived "
                          f"network's own metrics every epoch instead", field="genotype")
    return name


# Reference cells a retrain can be compared against, per recipe: (label, genotype text).
REFERENCE_CELLS = {
    "nb201": ("all 3×3 conv (NB201)",
              "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
              "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
    "darts-eval": ("DARTS V2 (quark0/darts cnn/genotypes.py DARTS_V2)",
                   "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                   "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), "
                   "('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                   "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
                   "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
                   "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                   "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"),
}
