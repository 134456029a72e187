"""Batched edge execution: a fast forward for the DARTS and NB201 search cells (issue 7).

The reference cell (supernet.py) runs every candidate op of every edge as its own module: a
DARTS cell makes ~600 small calls, and on a CPU their fixed cost (and oneDNN's per-image,
per-group loops for 5×5 and dilated depthwise backward passes) dwarfs the arithmetic. Here the
edges that leave the same state share their input, so each op runs once for all of them:

- ReLU once per source state, shared by every conv of every edge leaving it;
- the depthwise convs of all sep/dil ops of all those edges in one batched matmul: on small
  maps (H·W <= MATRIX_MAX_PIXELS) a k×k depthwise conv is, per channel, a (H·W, H'·W') matrix
  built from the kernel, so there is no im2col and no per-image loop; on larger maps one
  grouped conv per op;
- the pointwise 1×1 convs as one batched matmul, BN (affine=False, per channel) over the
  folded (op, edge, channel) axis - exact, since BN statistics are per channel - with each
  module's running statistics gathered, updated and written back;
- pools once per source state, FactorizedReduce of all stride-2 edges as two matmuls;
- `none` skipped (its weighted output is exactly 0), `skip_connect` a broadcast;
- each op's mixing weight folded into its last BN as the affine weight (w·BN(x) = BN(x; w)),
  so mixing an edge is a sum;
- edges with different ops (RobustDARTS S1, 2 of 6 per edge): per source state, each op runs
  once for the edges that have it;
- NB201: the 1×1 and 3×3 ReLU-Conv-BN ops of all edges leaving a node as one conv (one matrix
  on 2×2 maps, where oneDNN's weight gradient falls back to a per-image loop).

Inside a DARTS cell tensors are channel-major, (C, N, H, W), so channels of many edges fold
into one leading axis and matmuls need no copies; cells hand each other (N, C, H, W) *views*.
The math is the reference's (tests/test_fastpath.py checks losses, gradients, BN statistics
and 3 search steps against it); only the summation order differs (~1e-7 relative).

The modules and parameters are the reference cell's own (state_dict unchanged); weights are
read from the modules at every call, so `torch.func.functional_call` (second-order DARTS)
works. Cells the fast path does not cover (an edge that is not a plain `MixedOp`, i.e.
`MixedOp.plain` is off, such as PC-DARTS with K > 1; frozen cells; unknown ops) run the
reference forward: see `supernet._CellMixin._fast`.

Over 400 lines for a reason: it is one idea, the batched forward of both cells, and its
equivalence with the reference (tests/unit/test_fastpath.py) is easiest to check in one place.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registries import IMPLS as _IMPL_REGISTRY
from .ops import DilConv, FactorizedReduce, Identity, NoiseOp, ReLUConvBN, SepConv, Zero

IMPLS = ("fast", "plain")
_IMPL_REGISTRY.register("fast", "fast", "all edges leaving a node as one batched call per op")
_IMPL_REGISTRY.register("plain", "plain", "every op of every edge on its own (the reference)")
MATRIX_MAX_PIXELS = 64  # depthwise convs as per-channel pixel matrices up to 8×8 maps
DENSE_MATRIX_MAX_PIXELS = 4  # NB201's dense convs as one matrix on 2×2 maps
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_ACT_LED = (SepConv, DilConv, FactorizedReduce)  # ops that start with the activation


# --- support checks ------------------------------------------------------------------------------

def _is_pool_bn(op: nn.Module) -> bool:
    """The search supernet's pools: nn.Sequential(pool, BN)."""
    return (type(op) is nn.Sequential and len(op) == 2 and isinstance(op[0], _POOLS)
            and isinstance(op[1], nn.BatchNorm2d))


def _darts_op_ok(op: nn.Module) -> bool:
    return _is_pool_bn(op) or isinstance(op, (Zero, Identity, FactorizedReduce, SepConv,
                                                   DilConv, NoiseOp))


def _pointwise_ok(m: nn.Module) -> bool:
    conv = m[1] if isinstance(m, ReLUConvBN) else None
    return conv is not None and conv.kernel_size == (1, 1) and conv.stride == (1, 1)


def _act(m: nn.Module) -> nn.Module:
    """The activation leading a ReLU-Conv-BN style block (a module: tests may swap it)."""
    if isinstance(m, FactorizedReduce):
        return m.relu
    return m[0][0] if isinstance(m, SepConv) else m[0]


def _shared_act_ok(blocks: list[nn.Module]) -> bool:
    """One activation is computed per source state and shared by all its edges: every block's
    activation must be the same kind of module, and must not work in place."""
    acts = [_act(b) for b in blocks] + [b[1][0] for b in blocks if isinstance(b, SepConv)]
    return all(type(a) is type(acts[0]) and not getattr(a, "inplace", False) for a in acts)


def darts_cell_supported(cell: nn.Module) -> bool:
    """Whether `darts_cell` covers this DartsCell's preprocessing and ops."""
    pre0 = cell.preprocess0
    ops = [op for edge in cell.edges for op in edge.ops]
    return ((isinstance(pre0, FactorizedReduce) or _pointwise_ok(pre0))
            and _pointwise_ok(cell.preprocess1) and all(_darts_op_ok(op) for op in ops)
            and _shared_act_ok([pre0, cell.preprocess1]
                               + [op for op in ops if isinstance(op, _ACT_LED)]))


def nb201_cell_supported(cell: nn.Module) -> bool:
    """Whether `nb201_cell` covers this NB201Cell's ops."""
    ops = [op for edge in cell.edges for op in edge.ops]
    convs = [op[1] for op in ops if isinstance(op, ReLUConvBN)]
    return (all(isinstance(op, (Zero, Identity, ReLUConvBN, nn.AvgPool2d)) for op in ops)
            and all(_geometry(cv) == (1, (cv.kernel_size[0] - 1) // 2, 1) for cv in convs)
            and _shared_act_ok([op for op in ops if isinstance(op, ReLUConvBN)]))


# --- batched building blocks ---------------------------------------------------------------------

def batch_norm(x: torch.Tensor, bns: Sequence[nn.BatchNorm2d],
               scale: torch.Tensor | None = None) -> torch.Tensor:
    """Many BatchNorm2d modules in one call. x: (B, len(bns)·C, ...), module k owning channels
    k·C..(k+1)·C-1. Each module's running statistics are gathered, updated by F.batch_norm
    and written back, so train and eval mode and the state_dict match the modules' own calls.

    scale: (len(bns),) multiplies module k's output (a mixing weight), folded into BN's affine
    weight so the weighting costs no extra pass: w·BN(x) = BN(x; weight=w)."""
    bn, c = bns[0], bns[0].num_features
    track = bn.running_mean is not None
    mean = torch.cat([b.running_mean for b in bns]) if track else None
    var = torch.cat([b.running_var for b in bns]) if track else None
    weight = torch.cat([b.weight for b in bns]) if bn.affine else None
    bias = torch.cat([b.bias for b in bns]) if bn.affine else None
    if scale is not None:
        scale = scale.repeat_interleave(c)
        weight = scale if weight is None else weight * scale
        bias = None if bias is None else bias * scale
    training = bn.training or not track
    out = F.batch_norm(x, mean, var, weight, bias, training, bn.momentum, bn.eps)
    if bn.training and track:  # write back: three fused calls instead of three per module
        with torch.no_grad():
            torch._foreach_copy_([b.running_mean for b in bns], list(mean.split(c)))
            torch._foreach_copy_([b.running_var for b in bns], list(var.split(c)))
            torch._foreach_add_([b.num_batches_tracked for b in bns], 1)
    return out


def _batch_norm_cm(x: torch.Tensor, bns: Sequence[nn.BatchNorm2d],
                   scale: torch.Tensor | None = None) -> torch.Tensor:
    """batch_norm for channel-major x: (..., C, N, H, W), one module per leading index."""
    flat = x.reshape(1, -1, x.shape[-3] * x.shape[-2] * x.shape[-1])  # (1, M·C, N·H·W)
    return batch_norm(flat, bns, scale).view(x.shape)


def _out_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


@functools.lru_cache(maxsize=64)
def _tap_map(k: int, stride: int, padding: int, dilation: int, h: int, w: int,
             device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(k·k, H·W·H'·W') 0/1: entry [t, p·H'W' + q] is 1 iff kernel tap t links input pixel p
    to output pixel q. Taps that only ever see padding have no entry."""
    size = [_out_size(n, k, stride, padding, dilation) for n in (h, w)]
    t = torch.zeros(k, k, h, w, *size, dtype=dtype)
    oy, ox = torch.arange(size[0]), torch.arange(size[1])
    for ky in range(k):
        iy = oy * stride - padding + ky * dilation
        vy = (iy >= 0) & (iy < h)
        for kx in range(k):
            ix = ox * stride - padding + kx * dilation
            vx = (ix >= 0) & (ix < w)
            t[ky, kx, iy[vy][:, None], ix[vx][None, :], oy[vy][:, None], ox[vx][None, :]] = 1
    return t.view(k * k, -1).to(device)


def _geometry(conv: nn.Conv2d) -> tuple[int, int, int]:
    """(stride, padding, dilation) of a conv with a square kernel."""
    return conv.stride[0], conv.padding[0], conv.dilation[0]


def _pixel_matrices(wt: torch.Tensor, geometry: tuple[int, int, int], h: int,
                    w: int) -> torch.Tensor:
    """(..., k, k) kernels -> (..., H·W, H'·W') matrices with y = x @ M per channel."""
    k = wt.shape[-1]
    taps = _tap_map(k, *geometry, h, w, wt.device, wt.dtype)
    m = wt.reshape(-1, k * k) @ taps
    return m.view(*wt.shape[:-2], h * w, -1)


def depthwise(x: torch.Tensor, weights: Sequence[torch.Tensor],
              convs: Sequence[nn.Conv2d]) -> torch.Tensor:
    """Depthwise convs of many (op, source, edge) groups, channel-major.

    x: (1, S, 1, C, N, H, W) (one input per source, read by every op and edge) or
    (O, S, E, C, N, H, W); weights[o]: (S, E, C, k, k), with the geometry (square kernel,
    stride, padding, dilation) of convs[o]; all ops give the same output size.
    Returns (O, S, E, C, N, H', W'), possibly a non-contiguous view.
    """
    o, (s, e, c), (n, h, w) = len(weights), weights[0].shape[:3], x.shape[-3:]
    ho, wo = (_out_size(n, convs[0].kernel_size[0], *_geometry(convs[0])) for n in (h, w))
    if h * w <= MATRIX_MAX_PIXELS and x.shape[0] == 1 and x.shape[2] == 1:
        # Per (source, channel) one (N, P) @ (P, O·E·P') product: no copies of the input.
        m = torch.stack([_pixel_matrices(wt.transpose(1, 2), _geometry(cv), h, w).transpose(2, 3)
                         for wt, cv in zip(weights, convs)], dim=3)   # (S, C, P, O, E, P')
        y = torch.bmm(x.reshape(s * c, n, h * w), m.view(s * c, h * w, -1))
        return y.view(s, c, n, o, e, ho, wo).permute(3, 0, 4, 1, 2, 5, 6)
    xs = x.expand(o, s, e, c, n, h, w)
    if h * w <= MATRIX_MAX_PIXELS:  # per (op, source, edge, channel): (N, P) @ (P, P')
        m = torch.cat([_pixel_matrices(wt, _geometry(cv), h, w).flatten(0, 2)
                       for wt, cv in zip(weights, convs)])           # (O·S·E·C, P, P')
        return torch.bmm(xs.reshape(-1, n, h * w), m).view(o, s, e, c, n, ho, wo)
    outs = []
    for i, (wt, cv) in enumerate(zip(weights, convs)):  # larger maps: one grouped conv per op
        xn = xs[i].permute(3, 0, 1, 2, 4, 5).reshape(n, s * e * c, h, w)
        y = F.conv2d(xn, wt.reshape(s * e * c, 1, *wt.shape[-2:]), None, cv.stride, cv.padding,
                     cv.dilation, s * e * c)
        outs.append(y.view(n, s, e, c, ho, wo).permute(1, 2, 3, 0, 4, 5))
    return torch.stack(outs)


def pointwise(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """1×1 convs, channel-major. x: (..., C, N, H, W); weights: (..., C_out, C)."""
    y = torch.matmul(weights, x.reshape(*x.shape[:-3], -1))  # (..., C_out, N·H·W)
    return y.view(*y.shape[:-1], *x.shape[-3:])


def _relu_conv_bn(m: ReLUConvBN, x: torch.Tensor) -> torch.Tensor:
    """ReLUConvBN with a 1×1 conv (the DARTS preprocessing), channel-major (C, N, H, W)."""
    conv = m[1]
    y = pointwise(m[0](x), conv.weight.flatten(1))
    if conv.bias is not None:
        y = y + conv.bias.view(-1, 1, 1, 1)
    return _batch_norm_cm(y[None], [m[2]])[0]


def _factorized_reduce(r: torch.Tensor, frs: Sequence[FactorizedReduce], e: int,
                       scale: torch.Tensor | None = None) -> torch.Tensor:
    """FactorizedReduce of E edges per source on relu'd input r: (S, C, N, H, W), channel-major;
    frs in (source, edge) order. Returns (S, E, C_out, N, ⌈H/2⌉, ⌈W/2⌉)."""
    s, n = r.shape[0], r.shape[2]
    a = r[..., ::2, ::2]
    b = r[..., 1::2, 1::2]  # the 1-pixel shifted branch; one short on odd sizes: zero-pad it
    b = F.pad(b, (0, a.shape[-1] - b.shape[-1], 0, a.shape[-2] - b.shape[-2]))
    half = frs[0].conv_1.out_channels
    w1 = torch.stack([f.conv_1.weight.flatten(1) for f in frs]).view(s, e * half, -1)
    w2 = torch.stack([f.conv_2.weight.flatten(1) for f in frs]).view(s, e * half, -1)
    ya = torch.bmm(w1, a.reshape(s, a.shape[1], -1)).view(s, e, half, -1)
    yb = torch.bmm(w2, b.reshape(s, b.shape[1], -1)).view(s, e, half, -1)
    y = torch.stack([ya, yb], dim=2).view(s, e, 2 * half, n, *a.shape[-2:])
    return _batch_norm_cm(y, [f.bn for f in frs], scale)


# --- DARTS cell ----------------------------------------------------------------------------------

def _channel_major(x: torch.Tensor) -> torch.Tensor:
    return x.permute(1, 0, 2, 3)  # (N, C, H, W) <-> (C, N, H, W), a view


def _preprocess(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(m, FactorizedReduce):
        return _factorized_reduce(m.relu(x)[None], [m], 1)[0, 0]
    return _relu_conv_bn(m, x)


def _draw_noise(cell: nn.Module, shape: torch.Size, like: torch.Tensor
                ) -> dict[tuple[int, int], torch.Tensor]:
    """The `noise` op's samples for every edge, drawn in the reference's order (edge by edge),
    so both paths consume the global RNG identically. Channel-major (C, N, H', W')."""
    c, n, h, w = shape
    div = 2 if cell.reduction else 1  # every edge of a reduction cell ends at ⌈H/2⌉
    out = {}  # (edge row, α column) -> sample
    for e, edge in enumerate(cell.edges):
        for o, op in zip(edge.cols, edge.ops):
            if isinstance(op, NoiseOp):
                out[e, o] = _channel_major(torch.randn(n, c, -(-h // div), -(-w // div),
                                                       dtype=like.dtype, device=like.device))
    return out


def _separable(x: torch.Tensor, blocks: list[list[nn.Module]], s: int, e: int,
               scale: torch.Tensor | None) -> torch.Tensor:
    """One separable block (ReLU done by the caller, depthwise, pointwise, BN) of many ops.

    x: (1, S, 1, C, N, H, W) or (O, S, E, C, N, H, W); blocks[o]: the DilConv-like modules
    (ReLU, dw, pw, BN) of op o in (source, edge) order. Returns (O, S, E, C, N, H', W')."""
    dw = [torch.stack([b[1].weight for b in bl]).view(s, e, -1, *bl[0][1].kernel_size)
          for bl in blocks]
    y = depthwise(x, dw, [bl[0][1] for bl in blocks])
    pw = torch.stack([b[2].weight.flatten(1) for bl in blocks for b in bl])
    y = pointwise(y, pw.view(len(blocks), s, e, *pw.shape[1:]))
    return _batch_norm_cm(y, [b[3] for bl in blocks for b in bl], scale)


def _darts_round(cell: nn.Module, x: torch.Tensor, edges: list[list[int]], w: torch.Tensor,
                 noise: dict[tuple[int, int], torch.Tensor],
                 cols: Sequence[int]) -> torch.Tensor:
    """All edges leaving the states in x: (S, C, N, H, W); edges[s] lists the edge rows leaving
    source s (same targets for every source). Runs the ops of α columns `cols`, which every
    listed edge has. Returns the mixed edge outputs (S, E, C, N, H', W').

    Every op's last BN carries its mixing weight (batch_norm's `scale`), so mixing is a sum."""
    s, e = len(edges), len(edges[0])
    flat = [i for row in edges for i in row]
    # mods[o]: the module of op cols[o] on every edge, (source, edge) order
    mods = [[cell.edges[i].ops[cell.edges[i].cols.index(c)] for i in flat] for c in cols]
    ops = [m[0] for m in mods]
    wr = w[flat][:, list(cols)].t()   # (ops, S·E) mixing weights, (source, edge) order
    out = []
    led = [op for op in ops if isinstance(op, _ACT_LED)]
    r = _act(led[0])(x) if led else x  # one ReLU shared by every conv of every edge leaving x

    sep = [o for o, op in enumerate(ops) if isinstance(op, SepConv)]
    dil = [o for o, op in enumerate(ops) if isinstance(op, DilConv)]
    if sep or dil:  # first separable block of every sep and dil op: one call
        blocks = [[m[0] for m in mods[o]] for o in sep] + [mods[o] for o in dil]
        scale = torch.cat([torch.ones(len(sep) * s * e, dtype=w.dtype, device=w.device),
                           wr[dil].flatten()])
        y = _separable(r[None, :, None], blocks, s, e, scale)   # (O, S, E, C, N, H', W')
        y_sep, y_dil = y.split([len(sep), len(dil)])
        if dil:
            out.append(y_dil.sum(0))
        if sep:  # second block of the sep convs
            blocks = [[m[1] for m in mods[o]] for o in sep]
            act = blocks[0][0][0]
            out.append(_separable(act(y_sep), blocks, s, e, wr[sep].flatten()).sum(0))

    pools = [o for o, op in enumerate(ops) if _is_pool_bn(op)]
    if pools:  # each pool once per source, then every edge's own BN
        c, n, h, wd = x.shape[1:]
        pooled = torch.stack([ops[o][0](x.reshape(s * c, n, h, wd)) for o in pools])
        y = pooled.view(len(pools), s, 1, c, n, *pooled.shape[-2:])
        y = y.expand(-1, -1, e, -1, -1, -1, -1)
        bns = [m[1] for o in pools for m in mods[o]]
        out.append(_batch_norm_cm(y, bns, wr[pools].flatten()).sum(0))

    for o, op in enumerate(ops):
        if isinstance(op, Identity):
            out.append(wr[o].view(s, e, 1, 1, 1, 1) * x[:, None])
        elif isinstance(op, FactorizedReduce):
            out.append(_factorized_reduce(r, mods[o], e, wr[o]))
        elif isinstance(op, NoiseOp):
            c = cols[o]
            y = torch.stack([noise[i, c] for i in flat]).view(s, e, *noise[flat[0], c].shape)
            out.append(wr[o].view(s, e, 1, 1, 1, 1) * y)
    # Zero ops add exactly 0: skipped.
    if not out:  # only those: zeros, subsampled on stride-2 edges
        stride = next((op.stride for op in ops if isinstance(op, (Zero, NoiseOp))), 1)
        c, n, h, wd = x.shape[1:]
        return x.new_zeros(s, e, c, n, -(-h // stride), -(-wd // stride))
    return sum(out)


def _mixed_round(cell: nn.Module, x: torch.Tensor, edges: list[list[int]], w: torch.Tensor,
                 noise: dict[tuple[int, int], torch.Tensor]) -> torch.Tensor:
    """_darts_round for edges with different ops (RobustDARTS S1): per source, the edges that
    have an op run it as one batch; each edge sums its own ops. Returns (S, E, C, N, H', W')."""
    rows = []
    for src, row in enumerate(edges):
        parts: list[list[torch.Tensor]] = [[] for _ in row]
        for c in sorted({c for i in row for c in cell.edges[i].cols}):
            having = [k for k, i in enumerate(row) if c in cell.edges[i].cols]
            y = _darts_round(cell, x[src:src + 1], [[row[k] for k in having]], w, noise, [c])
            for k, yk in zip(having, y[0]):
                parts[k].append(yk)
        rows.append(torch.stack([sum(p) for p in parts]))
    return torch.stack(rows)


def darts_cell(cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor,
               edge_w: torch.Tensor | None = None) -> torch.Tensor:
    """DartsCell.forward with batched edges. s0, s1: (N, C, H, W) (any strides); w: (edges, ops);
    edge_w: PC-DARTS edge weights (edges,) or None. Returns (N, multiplier·C, H', W'), a
    channel-major tensor's view (the next fast cell reads it without a copy)."""
    if edge_w is not None:
        w = w * edge_w[:, None]
    states = [_preprocess(cell.preprocess0, _channel_major(s0)),
              _preprocess(cell.preprocess1, _channel_major(s1))]
    noise = (_draw_noise(cell, states[0].shape, states[0])
             if any(isinstance(op, NoiseOp)
                                      for edge in cell.edges for op in edge.ops)
             else {})
    same_ops = all(edge.cols == cell.edges[0].cols for edge in cell.edges)  # False in S1
    steps = cell.steps
    offsets = [sum(2 + t for t in range(i)) for i in range(steps)]  # first edge row of node i
    partial: list[list[torch.Tensor]] = [[] for _ in range(steps)]
    for r in range(steps):
        if r:  # node r-1 has received all its inputs: it becomes state r+1
            states.append(sum(partial[r - 1]))
        sources = [0, 1] if r == 0 else [r + 1]
        targets = range(r, steps)
        edges = [[offsets[i] + j for i in targets] for j in sources]
        x = torch.stack([states[j] for j in sources])
        z = (_darts_round(cell, x, edges, w, noise, cell.edges[0].cols) if same_ops
             else _mixed_round(cell, x, edges, w, noise))
        for i, zi in zip(targets, z.sum(0).unbind(0)):  # summed over sources, one per target
            partial[i].append(zi)
    states.append(sum(partial[-1]))
    return _channel_major(torch.cat(states[-cell.multiplier:]))


# --- NAS-Bench-201 cell --------------------------------------------------------------------------

def _nb201_round(cell: nn.Module, x: torch.Tensor, edges: list[int],
                 w: torch.Tensor) -> torch.Tensor:
    """All edges leaving node x: (N, C, H, W). Returns mixed outputs (N, E, C, H, W)."""
    e, (n, c, h, wd) = len(edges), x.shape
    ops = cell.edges[edges[0]].ops
    wr = w[edges].t()   # (ops, E)
    out = []
    # ReLU-Conv-BN ops, grouped by kernel size: one 'same' conv per size for all edges
    conv = sorted((o for o, op in enumerate(ops) if isinstance(op, ReLUConvBN)),
                  key=lambda o: ops[o][1].kernel_size[0])
    if conv:
        r = ops[conv[0]][0](x)  # one ReLU shared by every conv of every edge leaving x
        convs = [cell.edges[i].ops[o][1] for o in conv for i in edges]
        bias = torch.cat([cv.bias for cv in convs]) if convs[0].bias is not None else None
        if h * wd <= DENSE_MATRIX_MAX_PIXELS:  # all convs as one (C·P) -> (C'·P) matrix
            k = convs[-1].kernel_size[0]  # the largest; smaller kernels zero-padded to it
            weight = torch.cat([F.pad(cv.weight, [(k - cv.kernel_size[0]) // 2] * 4)
                                for cv in convs])
            m = _pixel_matrices(weight, (1, (k - 1) // 2, 1), h, wd)
            m = m.permute(0, 3, 1, 2).reshape(weight.shape[0] * h * wd, c * h * wd)
            bias = None if bias is None else bias.repeat_interleave(h * wd)
            y = F.linear(r.reshape(n, -1), m, bias).view(n, -1, h, wd)
        else:
            ys = []
            for k in sorted({cv.kernel_size[0] for cv in convs}):
                same = [cv for cv in convs if cv.kernel_size[0] == k]
                b = torch.cat([cv.bias for cv in same]) if bias is not None else None
                ys.append(F.conv2d(r, torch.cat([cv.weight for cv in same]), b,
                                   padding=(k - 1) // 2))
            y = torch.cat(ys, 1) if len(ys) > 1 else ys[0]
        bns = [cell.edges[i].ops[o][2] for o in conv for i in edges]
        out.append(batch_norm(y, bns, wr[conv].flatten()).view(n, len(conv), e, c, h, wd).sum(1))
    for o, op in enumerate(ops):
        if isinstance(op, Identity):
            out.append(wr[o].view(1, e, 1, 1, 1) * x[:, None])
        elif isinstance(op, nn.AvgPool2d):
            out.append(wr[o].view(1, e, 1, 1, 1) * op(x)[:, None])
    if not out:
        return x.new_zeros(n, e, c, h, wd)
    return sum(out)


def nb201_cell(cell: nn.Module, x: torch.Tensor, w: torch.Tensor,
               edge_w: torch.Tensor | None = None) -> torch.Tensor:
    """NB201Cell.forward with batched edges: node i = Σ_{j<i} MixedOp_{i<-j}(node j)."""
    if edge_w is not None:
        w = w * edge_w[:, None]
    nodes = [x]
    partial: list[list[torch.Tensor]] = [[], [], []]
    for j in range(3):
        if j:
            nodes.append(sum(partial[j - 1]))
        targets = range(j + 1, 4)
        z = _nb201_round(cell, nodes[j], [i * (i - 1) // 2 + j for i in targets], w)
        for i, zi in zip(targets, z.unbind(1)):
            partial[i - 1].append(zi)
    return sum(partial[2])
