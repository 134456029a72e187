"""Search supernets: the DARTS CNN network (ALGORITHMS.md §1.2-1.4) and NAS-Bench-201 (§2.2-2.3).

Both own their architecture parameters as registered `nn.Parameter`s in `self.alphas`
(a ParameterDict keyed by cell type), so `state_dict()` and checkpoints see them; the weight
optimiser gets `weight_parameters()` only. `forward(x, weights=None)` mixes ops with
`mixing_weights()` (per-edge softmax of α) unless explicit mixing weights are passed: MS-DARTS /
SDARTS perturb them in softmax space and the discretisation-gap indicator feeds one-hot ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .ops import DARTS_OPS_FACTORY, NB201_OPS_FACTORY, POOL_OPS, FactorizedReduce, OpFactory
from .ops import ReLUConvBN, ResNetBasicBlock

ALPHA_INIT_SCALE = 1e-3


class MixedOp(nn.Module):
    """Σ_o w_o · o(x) over all candidate ops of one edge (every op runs on every pass)."""

    def __init__(self, c: int, stride: int, ops: Sequence[str], factory: dict[str, OpFactory],
                 pool_bn: bool) -> None:
        super().__init__()
        layers = []
        for name in ops:
            op = factory[name](c, stride, False)
            if pool_bn and name in POOL_OPS:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            layers.append(op)
        self.ops = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # w: (ops,) mixing weights of this edge
        return sum(w[i] * op(x) for i, op in enumerate(self.ops))


class Supernet(nn.Module):
    """What every search supernet shares: α bookkeeping and the weight/arch split."""

    cell_types: tuple[str, ...]
    ops: tuple[str, ...]
    edge_labels: tuple[str, ...]

    def _init_alphas(self, n_edges: int, generator: torch.Generator | None) -> None:
        # alphas: (edges, ops) per cell type, 1e-3·randn as in the reference code (§1.4)
        self.alphas = nn.ParameterDict({
            t: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(n_edges, len(self.ops),
                                                           generator=generator))
            for t in self.cell_types
        })

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.alphas.values()}
        return (p for p in self.parameters() if id(p) not in arch)

    def mixing_weights(self) -> dict[str, torch.Tensor]:
        """Per-edge softmax of α, one (edges, ops) tensor per cell type."""
        return {t: torch.softmax(a, dim=-1) for t, a in self.alphas.items()}

    def n_weight_params(self) -> int:
        return sum(p.numel() for p in self.weight_parameters())


class DartsCell(nn.Module):
    """Two inputs, `steps` intermediate nodes, each summing MixedOps over all earlier states."""

    def __init__(self, ops: Sequence[str], steps: int, multiplier: int, c_pp: int, c_p: int,
                 c: int, reduction: bool, reduction_prev: bool) -> None:
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
                self.edges.append(MixedOp(c, stride, ops, DARTS_OPS_FACTORY, pool_bn=True))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # w: (edges=14, ops); edge rows run node by node: node0 <- {s0,s1}, node1 <- {s0,s1,n0}...
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self.edges[offset + j](h, w[offset + j]) for j, h in enumerate(states))
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
                 stem_multiplier: int = 3, alpha_generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edge_labels = darts_edge_labels(steps)
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_curr),
        )
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = {layers // 3, 2 * layers // 3}
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cell = DartsCell(self.ops, steps, multiplier, c_pp, c_p, c_curr, reduction,
                             reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self._init_alphas(len(self.edge_labels), alpha_generator)

    def forward(self, x: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.mixing_weights()
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            w = weights["reduce" if cell.reduction else "normal"]
            s0, s1 = s1, cell(s0, s1, w)
        return self.classifier(self.pool(s1).flatten(1))


NB201_EDGE_LABELS = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")


class NB201Cell(nn.Module):
    """Node i = Σ_{j<i} MixedOp_{i<-j}(node j); the output is node 3 (no concatenation)."""

    def __init__(self, ops: Sequence[str], c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp(c, 1, ops, NB201_OPS_FACTORY, pool_bn=False) for _ in NB201_EDGE_LABELS)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # w: (edges=6, ops=5). The sorted labels already run node by node (1<-0 | 2<-0, 2<-1 |
        # 3<-0, 3<-1, 3<-2), so node i reads rows offset .. offset+i-1.
        nodes = [x]
        offset = 0
        for i in range(1, 4):
            nodes.append(sum(self.edges[offset + j](nodes[j], w[offset + j]) for j in range(i)))
            offset += i
        return nodes[-1]


class NB201Supernet(Supernet):
    """TinyNetworkDarts: stem, 3 stages of N cells (C, 2C, 4C), residual reductions, BN-ReLU-GAP head."""

    cell_types = ("cell",)

    def __init__(self, ops: Sequence[str], c: int = 16, cells_per_stage: int = 5,
                 num_classes: int = 10, in_channels: int = 3,
                 alpha_generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edge_labels = NB201_EDGE_LABELS
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        c_prev = c
        for stage, c_curr in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_curr))
            layers.extend(NB201Cell(self.ops, c_curr) for _ in range(cells_per_stage))
            c_prev = c_curr
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False),
                                  nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(c_prev, num_classes)
        self._init_alphas(len(NB201_EDGE_LABELS), alpha_generator)

    def forward(self, x: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.mixing_weights()
        w = weights["cell"]
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h, w) if isinstance(layer, NB201Cell) else layer(h)
        return self.classifier(self.head(h).flatten(1))
