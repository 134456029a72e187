"""Search spaces, registered by name: the op list, cell types, supernet builder and derivation.

- `darts`: the 8-op DARTS CNN space (Liu, Simonyan & Yang 2019, §2.1 and §3.1.1; quark0/darts
  cnn/genotypes.py PRIMITIVES, cnn/model_search.py Network).
- `nb201`: the NAS-Bench-201 cell space (Dong & Yang 2020, §2; AutoDL-Projects
  xautodl/models/cell_searchs/search_model_darts.py TinyNetworkDarts).
- `trilevel-sr`: trilevel SR search at CPU size (Wu et al. 2021, arXiv 2101.06658;
  hanyao8/DA-NAS-SISR src/model_search_flexible.py NAS_GAN): three α families (cell, kernel,
  network) with their own rows over one op list, foreign columns masked (trilevel.py). The
  paper's setting is `register_trilevel_space(name, PAPER_TOPOLOGY, ...)`
  (trilevel_genotype.py), built with init_channels 64 and scale 4.
- `s1`..`s4`: RobustDARTS' reduced spaces on the DARTS cell (Zela et al. 2020, §3;
  automl/RobustDARTS src/spaces.py), where bi-level DARTS is
  known to fail. S2-S4 give every edge the same few ops. S1 gives every edge its own pair,
  precomputed by RobustDARTS from a DARTS run (their `primitives_1`, reproduced below).

S1 keeps one α column per op of the union of its pairs (6 ops, in DARTS order), so heatmaps,
op masses and the genotype text work as in every other space; an edge builds only its own two
ops, and the α of the other columns are masked: `Supernet.logits()` sets them to −inf, so any
relaxation gives them weight exactly 0 and no gradient. Recorded α carry the −inf too
(events.py), which is how the indicators and the derivation see each edge's ops.

A space owns its topology (genotype.py `CellTopology`): edge rows and ends, labels, the
derivation rule, the headline cell and the genotype text all come from `space.topology`. A new
space on the DARTS cell is one `register_darts_cell_space(...)` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..registries import SPACES
from .genotype import (
    DARTS_CELL,
    DARTS_OPS,
    NB201_CELL,
    NB201_OPS,
    CellTopology,
    Genotype,
    genotype_ops,
    parse_genotype,
)
from .relaxations import get_relaxation
from .supernet import DartsSupernet, NB201Supernet, Supernet
from .trilevel import TrilevelSupernet
from .trilevel_genotype import TrilevelTopology, parse_trilevel

if TYPE_CHECKING:
    from ..config import SearchConfig

# Parameter-free ops (none, skip, pools; RobustDARTS S4's noise). In the reduction cell the
# stride-2 skip is a FactorizedReduce with parameters, but it still counts as "skip" for the
# collapse indicators, as in the literature.
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
    topology: CellTopology | TrilevelTopology
    default_cells: int
    builder: Callable[..., Supernet]  # (space, C, cells, data, α generator, **options)
    description: str
    # S1: cell type -> the ops of each edge, in α row order; None: every edge has all `ops`
    edge_ops: Mapping[str, tuple[tuple[str, ...], ...]] | None = None

    @property
    def cell_types(self) -> tuple[str, ...]:
        return self.topology.cell_types

    @property
    def edge_labels(self) -> tuple[str, ...]:
        return self.topology.labels

    @property
    def n_edges(self) -> int:
        return self.topology.n_edges

    def edge_labels_of(self, cell_type: str) -> tuple[str, ...]:
        """The α row labels of one cell type (the same for every type but in trilevel-sr)."""
        labels_of = getattr(self.topology, "labels_of", None)
        return self.topology.labels if labels_of is None else labels_of(cell_type)

    def n_edges_of(self, cell_type: str) -> int:
        """The α rows of one cell type."""
        return len(self.edge_labels_of(cell_type))

    @property
    def headline(self) -> str:
        """The cell type shown where one cell is summarised (DARTS: normal)."""
        return self.topology.headline

    @property
    def param_free(self) -> frozenset[str]:
        return frozenset(o for o in self.ops if o in PARAM_FREE_OPS)

    def build(self, c: int, cells: int, data: DataShape, seed: int, *,
              relaxation: str = "softmax", impl: str = "fast", **options: Any) -> Supernet:
        """The supernet; α are initialised from their own generator seeded by `seed`.

        `options` go to the supernet: `mixed_op`, `edge_norm` (PC-DARTS), `staged` (LFR).
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
        return self.topology.derive(self.logits(alphas), self.ops, edge_weights=edge_weights,
                                    normalise=get_relaxation(relaxation).numpy)

    def parse(self, text: str) -> Genotype:
        """A genotype text of this space back (its own op list allowed)."""
        return self.topology.parse(text, ops=self.ops)

    def op_mask(self, cell: str) -> np.ndarray:
        """(edges, ops) bool: True where the op is on the edge (all True but in S1 and
        trilevel-sr, where each family has its own columns)."""
        if self.edge_ops is None:
            return np.ones((self.n_edges_of(cell), len(self.ops)), dtype=bool)
        return np.array([[op in edge for op in self.ops] for edge in self.edge_ops[cell]])

    def logits(self, alphas: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw α with −inf on the ops an edge does not have (unchanged but in S1)."""
        if self.edge_ops is None:
            return dict(alphas)
        return {t: np.where(self.op_mask(t), a, -np.inf) for t, a in alphas.items()}

    def check_config(self, cfg: SearchConfig) -> None:
        from ..config import ConfigError

        if self.topology.darts_cell and cfg.cells and cfg.cells < 3:
            raise ConfigError(
                f"cells must be >= 3 in the {self.name} space (reductions sit at 1/3 and 2/3 of "
                f"the depth, so fewer cells leave no normal cell), got {cfg.cells}",
                field="cells")
        if self.topology.darts_cell and cfg.init_channels % 2:
            raise ConfigError(
                f"init_channels must be even in the {self.name} space (FactorizedReduce splits "
                f"channels in two), got {cfg.init_channels}", field="init_channels")


def _build_darts(space: SearchSpace, c: int, cells: int, data: DataShape,
                 gen: torch.Generator, **options: Any) -> Supernet:
    return DartsSupernet(space.ops, c=c, layers=cells, num_classes=data.num_classes,
                         in_channels=data.in_channels, alpha_generator=gen,
                         edge_ops=space.edge_ops, **options)


def _build_nb201(space: SearchSpace, c: int, cells: int, data: DataShape,
                 gen: torch.Generator, **options: Any) -> Supernet:
    return NB201Supernet(space.ops, c=c, cells_per_stage=cells, num_classes=data.num_classes,
                         in_channels=data.in_channels, alpha_generator=gen, **options)


def _build_trilevel(space: SearchSpace, c: int, cells: int, data: DataShape,
                    gen: torch.Generator, **options: Any) -> Supernet:
    from ..config import ConfigError

    topo = space.topology
    if cells != topo.cells:
        raise ConfigError(f"cells must be {topo.cells} in the {space.name} space (its α rows "
                          f"are fixed by the space), got {cells}; leave it 0 for the default",
                          field="cells")
    scale = options.pop("scale", 2)
    residual = bool(options.pop("residual", False))
    if scale not in (2, 3, 4):
        raise ConfigError(f"scale must be 2, 3 or 4, got {scale!r}", field="scale")
    if options:
        raise ConfigError(f"the {space.name} space takes no {sorted(options)} option(s) (no "
                          f"partial channels, edge normalisation or stages)", field="method")
    return TrilevelSupernet(c, topo.cells, topo.ops_per_cell, topo.widths, scale, topo.ups,
                            topo.stem_cells, topo.divisor, data.in_channels, alpha_generator=gen,
                            residual=residual)


def register_trilevel_space(name: str, topology: TrilevelTopology, description: str
                            ) -> SearchSpace:
    """A trilevel SR space: its topology fixes cells, ops per cell, widths and the output tree,
    hence every family's rows and the op list (cell ops + widths + candidate outputs)."""
    return SPACES.register(name, SearchSpace(name, topology.ops, topology, topology.cells,
                                             _build_trilevel, description, topology.edge_ops),
                           description)


def register_darts_cell_space(name: str, ops: tuple[str, ...], description: str,
                              edge_ops: Mapping[str, tuple[tuple[str, ...], ...]] | None = None
                              ) -> SearchSpace:
    """A space on the DARTS cell under any name: its op list (and S1-style per-edge ops) is all
    it declares; rows, derivation, drawing and checks come with `DARTS_CELL`."""
    return SPACES.register(name, SearchSpace(name, ops, DARTS_CELL, 8, _build_darts, description,
                                             edge_ops), description)


# RobustDARTS S1: the two ops of each edge, rows node by node (n0<-s0, n0<-s1, n1<-s0, ...),
# as listed in automl/RobustDARTS src/spaces.py `primitives_1` (pairs kept in their order).
_SKIP, _MAX, _AVG = "skip_connect", "max_pool_3x3", "avg_pool_3x3"
_SEP3, _DIL3, _DIL5 = "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5"
S1_EDGE_OPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "normal": ((_SKIP, _DIL3), (_SKIP, _DIL5),                                   # node 0
               (_SKIP, _DIL5), (_SKIP, _SEP3), (_SKIP, _DIL3),                   # node 1
               (_MAX, _SKIP), (_SKIP, _SEP3), (_SKIP, _SEP3), (_SKIP, _DIL3),    # node 2
               (_SKIP, _SEP3), (_MAX, _SKIP), (_SKIP, _DIL3), (_DIL3, _DIL5),    # node 3
               (_DIL3, _DIL5)),
    "reduce": ((_MAX, _AVG), (_MAX, _DIL3),                                      # node 0
               (_MAX, _AVG), (_MAX, _AVG), (_SKIP, _DIL5),                       # node 1
               (_MAX, _AVG), (_MAX, _SEP3), (_SKIP, _DIL3), (_SKIP, _DIL5),      # node 2
               (_MAX, _AVG), (_MAX, _AVG), (_SKIP, _DIL5), (_SKIP, _DIL5),       # node 3
               (_SKIP, _DIL5)),
}

_NB201_TEXT = ("NAS-Bench-201: 5 ops, 6 edges, one cell shared by 3 stages (Dong & Yang 2020, "
               "§2); DARTS collapses to the all-skip cell here")
register_darts_cell_space("darts", DARTS_OPS,
                          "DARTS CNN space: 8 ops, 14 edges, normal + reduction cell (Liu, "
                          "Simonyan & Yang 2019, §2.1 and §3.1.1)")
SPACES.register("nb201", SearchSpace("nb201", NB201_OPS, NB201_CELL, 5, _build_nb201, _NB201_TEXT),
                _NB201_TEXT)
_S1_OPS = tuple(op for op in DARTS_OPS
                if any(op in edge for cell in S1_EDGE_OPS.values() for edge in cell))
register_darts_cell_space("s1", _S1_OPS,
                          "RobustDARTS S1: 2 ops per edge, precomputed from a DARTS run, on the "
                          "DARTS cell (Zela et al. 2020, §3)", S1_EDGE_OPS)
register_darts_cell_space("s2", ("skip_connect", "sep_conv_3x3"),
                          "RobustDARTS S2: {skip, sep3} on the DARTS cell (Zela et al. 2020, §3; "
                          "DARTS ends with skip on most edges)")
register_darts_cell_space("s3", ("none", "skip_connect", "sep_conv_3x3"),
                          "RobustDARTS S3: {none, skip, sep3} on the DARTS cell (Zela et al. "
                          "2020, §3; DARTS ends with skip on most edges)")
register_darts_cell_space("s4", ("noise", "sep_conv_3x3"),
                          "RobustDARTS S4: {noise, sep3} on the DARTS cell (Zela et al. 2020, §3; "
                          "noise carries no signal, yet DARTS picks it on many edges)")

register_trilevel_space(
    "trilevel-sr", TrilevelTopology("trilevel SR (CPU)", cells=4, ops_per_cell=3,
                                    widths=(0.5, 0.75, 1.0), ups=0, stem_cells=1),
    "Trilevel SR: cell ops, kernel widths and network depth searched together; 4 cells of 3 "
    "ops, widths ½ ¾ 1, output depth 1-4 (Wu et al. 2021, arXiv 2101.06658; code as "
    "hanyao8/DA-NAS-SISR)")


def discrete_weights(g: Genotype, space: SearchSpace) -> dict[str, np.ndarray]:
    """One-hot mixing weights of the derived cell: 1 on each kept edge's op, dropped edges 0."""
    out = {}
    for cell, edges in genotype_ops(g).items():
        w = np.zeros((space.n_edges, len(space.ops)))   # (edges, ops)
        for op, j, target in edges:
            w[space.topology.row(j, target), space.ops.index(op)] = 1.0
        out[cell] = w
    return out


def parse_any_genotype(text: str, ops: tuple[str, ...] | None = None) -> Genotype:
    """A genotype text of any space: the DARTS cell's, NB201's (genotype.py `parse_genotype`)
    or a trilevel SR network's `Trilevel(...)` (trilevel_genotype.py `parse_trilevel`)."""
    if text.strip().startswith("Trilevel("):
        return parse_trilevel(text)  # type: ignore[return-value]
    return parse_genotype(text, ops=ops)


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)
