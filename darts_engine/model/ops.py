"""Candidate operations of the DARTS CNN space (Liu et al. 2019; quark0/darts cnn/operations.py
`OPS`) and of NAS-Bench-201 (Dong & Yang 2020; AutoDL lib/models/cell_operations.py `OPS`).

Ops are data: `DARTS_OPS_FACTORY[name](C, stride, affine) -> nn.Module`. Every op maps
(N, C, H, W) -> (N, C, H/stride, W/stride). Order is ReLU-Conv-BN throughout; in the search
supernet BN is `affine=False`, and pools get an extra BN inside the MixedOp (see supernet.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

OpFactory = Callable[[int, int, bool], nn.Module]


class Zero(nn.Module):
    """`none`: zeros, subsampled for stride 2 (quark0 multiplies x by 0 to keep the graph)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool, bias: bool = False) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise k×k (dilated), pointwise 1×1, BN: one separable block."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """The separable block applied twice; only the first depthwise conv carries the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Stride-2 'skip': two 1×1 stride-2 convs, the second on x shifted by one pixel."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        assert c_out % 2 == 0, "FactorizedReduce needs an even channel count"
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        a = self.conv_1(x)
        # Odd spatial sizes: the shifted branch is one pixel short; pad it back on the far side.
        b = self.conv_2(x[:, :, 1:, 1:])
        if b.shape[-2:] != a.shape[-2:]:
            b = nn.functional.pad(b, (0, a.shape[-1] - b.shape[-1], 0, a.shape[-2] - b.shape[-2]))
        return self.bn(torch.cat([a, b], dim=1))


class NoiseOp(nn.Module):
    """RobustDARTS' `noise` op (Zela et al. 2020, space S4; src/operations.py `NoiseOp`):
    N(mean, std) noise shaped like the (strided) output, no signal, in train and eval mode alike
    (the reference draws it unconditionally; its S4 uses mean 0, std 1)."""

    def __init__(self, stride: int, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.stride, self.mean, self.std = stride, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return torch.randn_like(x) * self.std + self.mean


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(c, c, affine)


# DARTS CNN space. The extra BN after pools is added by the search MixedOp, not here.
DARTS_OPS_FACTORY: dict[str, OpFactory] = {
    "none": lambda c, s, a: Zero(s),
    "max_pool_3x3": lambda c, s, a: nn.MaxPool2d(3, stride=s, padding=1),
    "avg_pool_3x3": lambda c, s, a: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, s, a: SepConv(c, c, 3, s, 1, a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, c, 5, s, 2, a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, c, 5, s, 4, 2, a),
    "noise": lambda c, s, a: NoiseOp(s),
}

POOL_OPS = frozenset({"max_pool_3x3", "avg_pool_3x3"})

# NAS-Bench-201 cell ops (stride 1 only inside cells). Convs carry a bias when affine=False,
# as in AutoDL's `bias = not affine`.
NB201_OPS_FACTORY: dict[str, OpFactory] = {
    "none": lambda c, s, a: Zero(s),
    "skip_connect": lambda c, s, a: Identity(),
    "nor_conv_1x1": lambda c, s, a: ReLUConvBN(c, c, 1, s, 0, a, bias=not a),
    "nor_conv_3x3": lambda c, s, a: ReLUConvBN(c, c, 3, s, 1, a, bias=not a),
    "avg_pool_3x3": lambda c, s, a: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
}


class ResNetBasicBlock(nn.Module):
    """NB201's residual reduction block between stages (stride 2, C -> C_out)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
