"""Search supernets: the DARTS CNN network and NAS-Bench-201.

- DARTS: Liu, Simonyan & Yang 2019, §2.1-2.2 and §3.1.1, coded as in quark0/darts
  cnn/model_search.py (MixedOp, Cell, Network: 8 cells, C=16, reductions at 1/3 and 2/3).
- NAS-Bench-201: Dong & Yang 2020, §2, coded as in AutoDL-Projects
  xautodl/models/cell_searchs/search_cells.py NAS201SearchCell and search_model_darts.py
  TinyNetworkDarts.

Both own their architecture parameters as registered `nn.Parameter`s: `self.alphas` (one
(edges, ops) tensor per cell type) and, with PC-DARTS' edge normalisation, `self.betas` (one
(edges,) tensor per cell type). `state_dict()` and checkpoints see both; the Adam optimiser gets
`arch_parameters()`, the SGD optimiser `weight_parameters()` only. `forward(x, weights=None)`
mixes ops with `mixing_weights()` (the configured relaxation of α per edge, softmax by default)
unless explicit mixing weights are passed: MS-DARTS / SDARTS perturb them in softmax space and
the discretisation-gap indicator feeds one-hot ones. β is never replaced by `weights`.

An edge may have fewer ops than the α columns (RobustDARTS S1, `edge_ops`): it builds only its
own, `MixedOp.cols` names their α columns, and `logits()` sets α of the others to −inf, so
their mixing weight is exactly 0 and they get no gradient. Mixing weights passed explicitly are
read on an edge's own columns only.

Options used by the method variants (the plain DARTS path is unchanged without them):
- `mixed_op`: the factory every edge is built with, `MixedOp`'s signature (default `MixedOp`);
  PC-DARTS passes its partial-channel edge (methods/pcdarts.py).
- `edge_norm`: PC-DARTS edge normalisation (Xu et al. 2020, §3.3; model_search.py Cell.forward):
  node i = Σ_j softmax_i(β)_j · MixedOp_ij(h_j).
- `staged`: one classifier head per resolution stage, so LFR-DARTS can run the network cut
  after `depth` stages; `freeze_cell` fixes a cell to a discrete genotype (lfr.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from . import fastcell
from .ops import (
    DARTS_OPS_FACTORY,
    NB201_OPS_FACTORY,
    POOL_OPS,
    FactorizedReduce,
    OpFactory,
    ReLUConvBN,
    ResNetBasicBlock,
)
from .relaxations import get_relaxation

ALPHA_INIT_SCALE = 1e-3
N_RESOLUTION_STAGES = 3  # both spaces: C, 2C, 4C (two reductions)


class MixedOp(nn.Module):
    """Σ_o w_o · o(x) over the candidate ops of one edge (every op runs on every pass, unless
    the edge was fixed to a discrete choice: then only `active` ops run, see `freeze_cell`).

    `cols`: the α column of each op (default 0, 1, ...); an S1 edge has 2 ops of 6 columns."""

    def __init__(self, c: int, stride: int, ops: Sequence[str], factory: dict[str, OpFactory],
                 pool_bn: bool, cols: Sequence[int] | None = None) -> None:
        super().__init__()
        layers = []
        for name in ops:
            op = factory[name](c, stride, False)
            if pool_bn and name in POOL_OPS:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            layers.append(op)
        self.ops = nn.ModuleList(layers)
        self.cols = tuple(range(len(ops)) if cols is None else cols)
        # plain: forward is exactly MixedOp's on all c channels, so fastcell may batch the edge;
        # a subclass is not, unless it says so (PC-DARTS with K = 1)
        self.plain = type(self) is MixedOp
        self.active: tuple[int, ...] | None = None  # α columns; None: all ops; (): adds 0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # w: (α columns,) mixing weights of this edge
        return sum(w[c] * op(x) for c, op in zip(self.cols, self.ops)
                   if self.active is None or c in self.active)


MixedOpFactory = Callable[[int, int, Sequence[str], dict[str, OpFactory], bool,
                           Sequence[int] | None], MixedOp]
"""(c, stride, ops, op factory, pool_bn, cols) -> an edge; `MixedOp` itself is the default."""


def node_edge_norm(beta: torch.Tensor, node_sizes: Sequence[int]) -> torch.Tensor:
    """Softmax of β over each node's incoming edges. beta: (edges,), rows node by node."""
    return torch.cat([torch.softmax(b, dim=-1) for b in beta.split(list(node_sizes))])


class Supernet(nn.Module):
    """What every search supernet shares: α (and β) bookkeeping and the weight/arch split."""

    cell_types: tuple[str, ...]
    ops: tuple[str, ...]
    edge_labels: tuple[str, ...]
    node_sizes: tuple[int, ...]      # incoming edges per intermediate node, in row order
    relaxation: str = "softmax"      # RELAXATIONS entry applied to each edge's α
    progress: float = 1.0            # search progress, 0 → 1, set per step by the loop; read by
                                     # relaxations with a schedule (sparsestmax's radius)
    depth: int = N_RESOLUTION_STAGES  # resolution stages run by forward (LFR-DARTS: fewer)

    def _init_alphas(self, n_edges: int, generator: torch.Generator | None,
                     edge_norm: bool = False,
                     edge_ops: Mapping[str, Sequence[Sequence[str]]] | None = None) -> None:
        # alphas: (edges, ops) per cell type, 1e-3·randn as in quark0 cnn/model_search.py
        # Network._initialize_alphas (the paper says zero)
        self.alphas = nn.ParameterDict({
            t: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(n_edges, len(self.ops),
                                                           generator=generator))
            for t in self.cell_types
        })
        # betas: (edges,) per cell type, drawn after α so α init matches plain DARTS (PC-DARTS
        # model_search.py _initialize_alphas)
        self.betas = nn.ParameterDict({
            t: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(n_edges, generator=generator))
            for t in (self.cell_types if edge_norm else ())
        })
        # op_mask_<t>: (edges, ops) bool, the ops each edge has (S1 only; not in state_dict).
        # Masked α are never read (logits() replaces them); they start at 0 and, with no
        # gradient and Adam's L2 term 0·wd, stay there.
        self.masked = edge_ops is not None
        for t in self.cell_types if edge_ops is not None else ():
            mask = torch.tensor([[op in edge for op in self.ops] for edge in edge_ops[t]])
            self.register_buffer(f"op_mask_{t}", mask, persistent=False)
            with torch.no_grad():
                self.alphas[t].masked_fill_(~mask, 0.0)

    def arch_parameters(self) -> list[nn.Parameter]:
        """α (and β) being searched: those with requires_grad (LFR-DARTS switches some off)."""
        return [p for p in (*self.alphas.values(), *self.betas.values()) if p.requires_grad]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable weights: everything but α and β, and nothing frozen (requires_grad off)."""
        arch = {id(p) for p in (*self.alphas.values(), *self.betas.values())}
        return (p for p in self.parameters() if id(p) not in arch and p.requires_grad)

    def op_masks(self) -> dict[str, torch.Tensor] | None:
        """(edges, ops) bool per cell type: the ops each edge has; None when every edge has all."""
        if not self.masked:
            return None
        return {t: getattr(self, f"op_mask_{t}") for t in self.cell_types}

    def logits(self) -> dict[str, torch.Tensor]:
        """α as the relaxation sees them: −inf on the ops an edge does not have (S1), so their
        weight is exactly 0 under softmax and sparsemax and no gradient reaches them."""
        masks = self.op_masks()
        if masks is None:
            return dict(self.alphas.items())
        return {t: a.masked_fill(~masks[t], -math.inf) for t, a in self.alphas.items()}

    def mixing_weights(self) -> dict[str, torch.Tensor]:
        """Per-edge relaxation of α (softmax by default), one (edges, ops) tensor per cell type;
        a relaxation with a schedule reads `self.progress` (1, the end, unless the loop sets it)."""
        relax = get_relaxation(self.relaxation)
        return {t: relax.torch(a, self.progress) for t, a in self.logits().items()}

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """PC-DARTS edge normalisation: per-node softmax of β, one (edges,) tensor per cell type
        (each node's rows sum to 1); None without edge normalisation."""
        if not len(self.betas):
            return None
        return {t: node_edge_norm(b, self.node_sizes) for t, b in self.betas.items()}

    def n_weight_params(self) -> int:
        return sum(p.numel() for p in self.weight_parameters())

    def set_impl(self, impl: str) -> None:
        """'fast' (default): batched edge execution (fastcell.py); 'plain': the per-op
        reference forward. Same modules and parameters either way."""
        if impl not in fastcell.IMPLS:
            raise ValueError(f"impl must be one of {fastcell.IMPLS}, got {impl!r}")
        for m in self.modules():
            if isinstance(m, _CellMixin):
                m.impl = impl

    def resolution_stages(self) -> list[list[nn.Module]]:
        """The modules of each resolution stage, shallow to deep (the stem is in stage 0)."""
        raise NotImplementedError

    def stage_heads(self) -> list[nn.Module]:
        """The classifier head used when `depth` = 1, 2, 3 (the last is the usual head)."""
        raise NotImplementedError


class _CellMixin:
    """What DARTS and NB201 cells share: optional fixed (discrete) mixing weights."""

    fixed: torch.Tensor | None
    edges: nn.ModuleList
    impl: str = "fast"  # see Supernet.set_impl

    def _mixing(self, w: torch.Tensor) -> torch.Tensor:
        return w if self.fixed is None else self.fixed

    def _fast(self, supported: Callable[[nn.Module], bool]) -> bool:
        """Run the batched forward? It covers live cells of whole-channel MixedOps."""
        return (self.impl == "fast" and self.fixed is None
                and all(e.active is None and e.plain for e in self.edges)
                and supported(self))


def freeze_cell(cell: nn.Module, weights: torch.Tensor) -> None:
    """Fix a searchable cell to a discrete choice: `weights` (edges, ops) is one-hot on each kept
    edge's op and 0 on pruned edges. Only the kept ops still run; the passed mixing weights are
    ignored from now on; the cell's parameters stop requiring gradients (lfr.py)."""
    cell.fixed = weights.detach().to(next(cell.parameters(), weights).device)
    for row, edge in zip(weights, cell.edges):
        edge.active = tuple(int(k) for k in torch.nonzero(row).flatten())
    cell.requires_grad_(False)


class DartsCell(_CellMixin, nn.Module):
    """Two inputs, `steps` intermediate nodes, each summing MixedOps over all earlier states."""

    def __init__(self, ops: Sequence[str], steps: int, multiplier: int, c_pp: int, c_p: int,
                 c: int, reduction: bool, reduction_prev: bool,
                 mixed_op: MixedOpFactory = MixedOp,
                 edge_ops: Sequence[Sequence[str]] | None = None) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps, self.multiplier = steps, multiplier
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                own = ops if edge_ops is None else edge_ops[len(self.edges)]  # S1: 2 of `ops`
                cols = sorted(ops.index(op) for op in own)  # modules in α column order
                self.edges.append(mixed_op(c, stride, [ops[k] for k in cols],
                                           DARTS_OPS_FACTORY, True, cols))
        self.register_buffer("fixed", None, persistent=False)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor,
                edge_w: torch.Tensor | None = None) -> torch.Tensor:
        # w: (edges=14, ops); edge rows run node by node: node0 <- {s0,s1}, node1 <- {s0,s1,n0}...
        # edge_w: (edges,) PC-DARTS edge weights, multiplying each whole MixedOp output
        if self._fast(fastcell.darts_cell_supported):
            return fastcell.darts_cell(self, s0, s1, w, edge_w)
        w = self._mixing(w)
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            if edge_w is None:
                s = sum(self.edges[offset + j](h, w[offset + j]) for j, h in enumerate(states))
            else:
                s = sum(edge_w[offset + j] * self.edges[offset + j](h, w[offset + j])
                        for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier:], dim=1)


def darts_edge_labels(steps: int = 4) -> tuple[str, ...]:
    names = ["s0", "s1"] + [f"n{k}" for k in range(steps)]
    return tuple(f"n{i}<-{names[j]}" for i in range(steps) for j in range(2 + i))


class DartsSupernet(Supernet):
    """DARTS' search network: stem, `layers` cells, reductions at 1/3 and 2/3 depth, GAP head."""

    cell_types = ("normal", "reduce")

    def __init__(self, ops: Sequence[str], c: int = 16, layers: int = 8, num_classes: int = 10,
                 in_channels: int = 3, steps: int = 4, multiplier: int = 4,
                 stem_multiplier: int = 3, alpha_generator: torch.Generator | None = None,
                 mixed_op: MixedOpFactory = MixedOp, edge_norm: bool = False,
                 staged: bool = False, edge_ops: Mapping[str, Sequence[Sequence[str]]] | None = None) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edge_labels = darts_edge_labels(steps)
        self.node_sizes = tuple(range(2, steps + 2))
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_curr),
        )
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = {layers // 3, 2 * layers // 3}
        stage_channels = []  # output channels at the end of each resolution stage
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                stage_channels.append(c_p)
                c_curr *= 2
            t = "reduce" if reduction else "normal"
            cell = DartsCell(self.ops, steps, multiplier, c_pp, c_p, c_curr, reduction,
                             reduction_prev, mixed_op, None if edge_ops is None else edge_ops[t])
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self._init_alphas(len(self.edge_labels), alpha_generator, edge_norm, edge_ops)
        # stage of each cell: how many reductions at or before it (0, 0, 1, 1, 1, 2, 2, 2)
        self._stage_of = [sum(r <= i for r in reductions) for i in range(layers)]
        self.early_heads = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, num_classes))
            for ch in (stage_channels if staged else ()))

    def forward(self, x: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.mixing_weights()
        edge_w = self.edge_weights() or {}
        s0 = s1 = self.stem(x)
        for cell, stage in zip(self.cells, self._stage_of):
            if stage >= self.depth:  # LFR-DARTS: deeper cells are not built yet
                return self.early_heads[self.depth - 1](s1)
            t = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[t], edge_w.get(t))
        return self.classifier(self.pool(s1).flatten(1))

    def resolution_stages(self) -> list[list[nn.Module]]:
        stages: list[list[nn.Module]] = [[self.stem], [], []]
        for cell, stage in zip(self.cells, self._stage_of):
            stages[stage].append(cell)
        return stages

    def stage_heads(self) -> list[nn.Module]:
        return [*self.early_heads, nn.ModuleList([self.pool, self.classifier])]


NB201_EDGE_LABELS = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")


class NB201Cell(_CellMixin, nn.Module):
    """Node i = Σ_{j<i} MixedOp_{i<-j}(node j); the output is node 3 (no concatenation)."""

    def __init__(self, ops: Sequence[str], c: int, mixed_op: MixedOpFactory = MixedOp) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            mixed_op(c, 1, ops, NB201_OPS_FACTORY, False, None) for _ in NB201_EDGE_LABELS)
        self.register_buffer("fixed", None, persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                edge_w: torch.Tensor | None = None) -> torch.Tensor:
        # w: (edges=6, ops=5). The sorted labels already run node by node (1<-0 | 2<-0, 2<-1 |
        # 3<-0, 3<-1, 3<-2), so node i reads rows offset .. offset+i-1. edge_w: (edges,) or None
        if self._fast(fastcell.nb201_cell_supported):
            return fastcell.nb201_cell(self, x, w, edge_w)
        w = self._mixing(w)
        nodes = [x]
        offset = 0
        for i in range(1, 4):
            if edge_w is None:
                nodes.append(sum(self.edges[offset + j](nodes[j], w[offset + j])
                                 for j in range(i)))
            else:
                nodes.append(sum(edge_w[offset + j] * self.edges[offset + j](nodes[j],
                                                                              w[offset + j])
                                 for j in range(i)))
            offset += i
        return nodes[-1]


class NB201Supernet(Supernet):
    """TinyNetworkDarts: stem, 3 stages of N cells (C, 2C, 4C), residual reductions, BN-ReLU-GAP head."""

    cell_types = ("cell",)

    def __init__(self, ops: Sequence[str], c: int = 16, cells_per_stage: int = 5,
                 num_classes: int = 10, in_channels: int = 3,
                 alpha_generator: torch.Generator | None = None,
                 mixed_op: MixedOpFactory = MixedOp, edge_norm: bool = False, staged: bool = False) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edge_labels = NB201_EDGE_LABELS
        self.node_sizes = (1, 2, 3)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        self._stage_of: list[int] = []
        c_prev = c
        for stage, c_curr in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_curr))
            layers.extend(NB201Cell(self.ops, c_curr, mixed_op) for _ in range(cells_per_stage))
            self._stage_of += [stage] * (cells_per_stage + (stage > 0))
            c_prev = c_curr
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False),
                                  nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(c_prev, num_classes)
        self._init_alphas(len(NB201_EDGE_LABELS), alpha_generator, edge_norm)
        self.early_heads = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(ch, num_classes))
            for ch in ((c, 2 * c) if staged else ()))

    def forward(self, x: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.mixing_weights()
        w = weights["cell"]
        edge_w = (self.edge_weights() or {}).get("cell")
        h = self.stem(x)
        for layer, stage in zip(self.layers, self._stage_of):
            if stage >= self.depth:  # LFR-DARTS: deeper layers are not built yet
                return self.early_heads[self.depth - 1](h)
            h = layer(h, w, edge_w) if isinstance(layer, NB201Cell) else layer(h)
        return self.classifier(self.head(h).flatten(1))

    def resolution_stages(self) -> list[list[nn.Module]]:
        stages: list[list[nn.Module]] = [[self.stem], [], []]
        for layer, stage in zip(self.layers, self._stage_of):
            stages[stage].append(layer)
        return stages

    def stage_heads(self) -> list[nn.Module]:
        return [*self.early_heads, nn.ModuleList([self.head, self.classifier])]
