"""Search spaces, registered by name: the op list, cell types, supernet builder and derivation.

- `darts`: the 8-op DARTS CNN space (ALGORITHMS.md §1).
- `nb201`: the NAS-Bench-201 cell space (§2).
- `s2`, `s3`, `s4`: RobustDARTS' reduced spaces on the DARTS cell (§8.1), where bi-level DARTS
  is known to fail. (S1, which needs per-edge op pairs precomputed from a DARTS run, is not
  offered.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .genotype import DARTS_OPS, NB201_OPS, Genotype, derive_genotype
from .registries import SPACES
from .relaxations import get_relaxation
from .supernet import NB201_EDGE_LABELS, DartsSupernet, NB201Supernet, Supernet
from .supernet import darts_edge_labels

if TYPE_CHECKING:
    from .config import SearchConfig

# Parameter-free ops (§8). In the reduction cell the stride-2 skip is a FactorizedReduce with
# parameters, but it still counts as "skip" for the collapse indicators, as in the literature.
PARAM_FREE_OPS = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"})


@dataclass(frozen=True)
class DataShape:
    in_channels: int
    image_size: int
    num_classes: int


@dataclass(frozen=True)
class SearchSpace:
    name: str
    ops: tuple[str, ...]
    cell_types: tuple[str, ...]
    edge_labels: tuple[str, ...]
    default_cells: int
    builder: Callable[..., Supernet]  # (space, C, cells, data, α generator, **options)
    description: str

    @property
    def n_edges(self) -> int:
        return len(self.edge_labels)

    @property
    def param_free(self) -> frozenset[str]:
        return frozenset(o for o in self.ops if o in PARAM_FREE_OPS)

    def build(self, c: int, cells: int, data: DataShape, seed: int, *,
              relaxation: str = "softmax", impl: str = "fast", **options: Any) -> Supernet:
        """The supernet; α are initialised from their own generator seeded by `seed`.

        `options` go to the supernet: `partial_k`, `edge_norm` (PC-DARTS), `staged` (LFR).
        `impl`: "fast" (batched edges, fastcell.py) or "plain" (per-op reference)."""
        gen = torch.Generator().manual_seed(seed)
        model = self.builder(self, c, cells or self.default_cells, data, gen, **options)
        model.relaxation = relaxation
        model.set_impl(impl)
        return model

    def derive(self, alphas: Mapping[str, np.ndarray],
               edge_weights: Mapping[str, np.ndarray] | None = None,
               relaxation: str = "softmax") -> Genotype:
        """The genotype from raw α (and PC-DARTS β), compared under the run's relaxation."""
        return derive_genotype(self.name, alphas, ops=self.ops, edge_weights=edge_weights,
                               normalise=get_relaxation(relaxation).numpy)

    def check_config(self, cfg: SearchConfig) -> None:
        from .config import ConfigError

        if self.cell_types == ("normal", "reduce") and cfg.cells and cfg.cells < 3:
            raise ConfigError(
                f"cells must be >= 3 in the {self.name} space (reductions sit at 1/3 and 2/3 of "
                f"the depth, so fewer cells leave no normal cell), got {cfg.cells}",
                field="cells")
        if self.cell_types == ("normal", "reduce") and cfg.init_channels % 2:
            raise ConfigError(
                f"init_channels must be even in the {self.name} space (FactorizedReduce splits "
                f"channels in two), got {cfg.init_channels}", field="init_channels")


def _build_darts(space: SearchSpace, c: int, cells: int, data: DataShape,
                 gen: torch.Generator, **options: Any) -> Supernet:
    return DartsSupernet(space.ops, c=c, layers=cells, num_classes=data.num_classes,
                         in_channels=data.in_channels, alpha_generator=gen, **options)


def _build_nb201(space: SearchSpace, c: int, cells: int, data: DataShape,
                 gen: torch.Generator, **options: Any) -> Supernet:
    return NB201Supernet(space.ops, c=c, cells_per_stage=cells, num_classes=data.num_classes,
                         in_channels=data.in_channels, alpha_generator=gen, **options)


def _register_darts_like(name: str, ops: tuple[str, ...], description: str) -> None:
    SPACES.register(name, SearchSpace(name, ops, ("normal", "reduce"), darts_edge_labels(), 8,
                                      _build_darts, description), description)


_register_darts_like("darts", DARTS_OPS,
                     "DARTS CNN space: 8 ops, 14 edges, normal + reduction cell (Liu et al. 2019)")
SPACES.register("nb201", SearchSpace(
    "nb201", NB201_OPS, ("cell",), NB201_EDGE_LABELS, 5, _build_nb201,
    "NAS-Bench-201: 5 ops, 6 edges, one cell shared by 3 stages (Dong & Yang 2020)"),
    "NAS-Bench-201: 5 ops, 6 edges, one cell shared by 3 stages (Dong & Yang 2020)")
_register_darts_like("s2", ("skip_connect", "sep_conv_3x3"),
                     "RobustDARTS S2: {skip, sep3} on the DARTS cell (Zela et al. 2020)")
_register_darts_like("s3", ("none", "skip_connect", "sep_conv_3x3"),
                     "RobustDARTS S3: {none, skip, sep3} on the DARTS cell (Zela et al. 2020)")
_register_darts_like("s4", ("noise", "sep_conv_3x3"),
                     "RobustDARTS S4: {noise, sep3} on the DARTS cell (Zela et al. 2020)")


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)
