"""Discrete networks built from a derived cell, for retraining it from scratch.

- `NetworkCIFAR`: the DARTS evaluation network (Liu, Simonyan & Yang 2019, §3.3; quark0/darts
  cnn/model.py `Cell`, `AuxiliaryHeadCIFAR`, `NetworkCIFAR`): a 3·C stem, `layers` cells with
  the genotype's ops and concat, reductions at 1/3 and 2/3 depth, an auxiliary head after the
  2/3 cell (training only), drop-path per edge (cnn/utils.py `drop_path`) in training only and
  never on an identity edge.
- `TinyNetwork`: NAS-Bench-201's evaluation network (Dong & Yang 2020, §2; AutoDL-Projects
  xautodl/models/cell_infers/tiny_network.py `TinyNetwork`, cells.py `InferCell`): a C stem,
  N cells per stage at C, 2C, 4C, ResNet basic-block reductions, BN-ReLU, global pool,
  classifier. `none` edges are dropped (they add zeros and hold no parameters).

Both take the data's channel count (`in_channels`), as our supernets' stems do. All ops come
from model/ops.py with `affine=True`; pools carry no BN (the BN is a search-MixedOp addition).
"""

from __future__ import annotations

import torch
from torch import nn

from .genotype import DartsGenotype, NB201Genotype
from .ops import (
    DARTS_OPS_FACTORY,
    NB201_OPS_FACTORY,
    FactorizedReduce,
    Identity,
    ReLUConvBN,
    ResNetBasicBlock,
)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability `drop_prob`, scale the kept ones by 1/keep
    (quark0 cnn/utils.py `drop_path`; one Bernoulli draw per sample, from torch's global RNG)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    """quark0 model.py `Cell`: the genotype's 2 ops per node, output = concat of its states."""

    def __init__(self, genotype: DartsGenotype, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=True) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=True))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=True)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.indices = tuple(j for _, j in edges)
        # only edges from the two cell inputs (j < 2) carry the reduction's stride
        self.edge_ops = nn.ModuleList(
            DARTS_OPS_FACTORY[op](c, 2 if reduction and j < 2 else 1, True) for op, j in edges)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(0, len(self.edge_ops), 2):  # node k // 2 sums its two kept edges
            node = 0
            for op, j in zip(self.edge_ops[k:k + 2], self.indices[k:k + 2]):
                h = op(states[j])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node = node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)  # (N, multiplier·C, H, W)


class AuxiliaryHeadCIFAR(nn.Module):
    """quark0 model.py `AuxiliaryHeadCIFAR`, written for an 8×8 input: pool 5/3 to 2×2,
    conv 1×1 to 128, conv 2×2 to 768, linear. Inputs smaller than 8×8 (small built-in images)
    are pooled adaptively to 2×2 instead, so the rest of the head is unchanged. The ReLUs are
    not in-place here: quark0's in-place first ReLU also rectifies the main path's features."""

    def __init__(self, c: int, num_classes: int, size: int) -> None:
        super().__init__()
        pool = (nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False) if size >= 8
                else nn.AdaptiveAvgPool2d(2))
        self.features = nn.Sequential(
            nn.ReLU(), pool,
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class NetworkCIFAR(nn.Module):
    """quark0 model.py `NetworkCIFAR`. forward -> (logits, aux logits or None); the auxiliary
    logits exist only in training with `auxiliary=True`. Set `drop_path_prob` per epoch."""

    def __init__(self, genotype: DartsGenotype, c: int = 36, layers: int = 20,
                 num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 auxiliary: bool = True, stem_multiplier: int = 3) -> None:
        super().__init__()
        self.layers, self.drop_path_prob = layers, 0.0
        self.aux_at = 2 * layers // 3
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev, size, c_aux, size_aux = False, image_size, c_p, image_size
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
                size = (size + 1) // 2  # stride-2 convs with padding, FactorizedReduce: ceil
            cell = EvalCell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self.aux_at:
                c_aux, size_aux = c_p, size
        self.auxiliary_head = (AuxiliaryHeadCIFAR(c_aux, num_classes, size_aux) if auxiliary
                               else None)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), logits_aux


class InferCell(nn.Module):
    """AutoDL cells.py `InferCell`: node i = Σ_j op_{i<-j}(node j), output = the last node.
    `none` edges are left out; a node with no live input is zeros."""

    def __init__(self, genotype: NB201Genotype, c: int) -> None:
        super().__init__()
        self.edge_ops = nn.ModuleList()
        self.inputs: list[list[tuple[int, int]]] = []  # per node: (op index, input node j)
        for node in genotype.nodes:
            live = []
            for op, j in node:
                if op != "none":
                    live.append((len(self.edge_ops), j))
                    self.edge_ops.append(NB201_OPS_FACTORY[op](c, 1, True))
            self.inputs.append(live)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for live in self.inputs:
            h = torch.zeros_like(x)
            for k, j in live:
                h = h + self.edge_ops[k](nodes[j])
            nodes.append(h)
        return nodes[-1]


class TinyNetwork(nn.Module):
    """AutoDL tiny_network.py `TinyNetwork`: forward -> (logits, None), the same pair as
    NetworkCIFAR so one training loop drives both (it has no auxiliary head)."""

    def __init__(self, genotype: NB201Genotype, c: int = 16, cells_per_stage: int = 5,
                 num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        c_prev = c
        for stage, c_curr in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_curr))
            layers.extend(InferCell(genotype, c_curr) for _ in range(cells_per_stage))
            c_prev = c_curr
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        h = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(h).flatten(1)), None


def count_parameters(model: nn.Module) -> int:
    """Parameters outside the auxiliary head (quark0 utils.py `count_parameters_in_MB` × 1e6)."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)
