"""Trilevel SR supernet, its derived network, FLOPs and the order loss.

Wu, Huang, Kumar, Sukthanker, Timofte & Van Gool 2021, "Trilevel Neural Architecture Search for
Efficient Single Image Super-Resolution" (arXiv 2101.06658), coded as in hanyao8/DA-NAS-SISR
(built on the first author's code): src/model_search_flexible.py `NAS_GAN`, `Cell`, `MixedOp`,
`gumbel_softmax`, src/operations.py (the ops, `ENABLE_BN = False`), src/slimmable_ops.py
`USConv2d` / `make_divisible`, src/model_infer.py `NAS_GAN_Infer` and src/get_inherit_weight.py.

    LR (N, 3, h, w) -> conv_first (3 -> nf) -> stem cells -> tree of cells / upconvs, every node
    a candidate h_i -> Σ_i γ_i h_i -> conv_last (nf -> 3·s²) -> PixelShuffle(s) -> (tanh + 1) / 2

No BN anywhere. A cell is a chain of mixed ops whose output is 0.2·h + x. Every conv inside an op
is slimmable: the supernet holds nf-wide weights and runs their leading [:c_out, :c_in] corner,
where c is the width chosen on the kernel level for the feature between two ops. Widths per
kernel row (`width_mode`):
- "sample" (default in training): hard straight-through Gumbel-softmax on the kernel mixing
  weights, the op output scaled by the sampled score (value 1, gradient to the kernel α), as
  `MixedOp.forward` with `sample_prun_ratio("arch_ratio")`;
- "argmax" (default in eval): the strongest width, score 1 (deterministic);
- "min", "max", "random": the reference's sandwich rule for the weight step (`NAS_GAN._loss`:
  sampled + max + min widths in search, max + min + 2 random in the warm-up).

Deviations: the reference's slimmable `SkipConnect` is a 1×1 conv + ReLU; ours is
parameter-free (identity, channels cut or zero-padded to the next width) so the collapse
indicators count it as skip. FLOPs are the expectation at the expected channel counts, not at
one Gumbel sample (equal at one-hot weights), and include conv_last, which the reference's
`forward_flops` leaves out (a constant).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .supernet import ALPHA_INIT_SCALE, Supernet
from .trilevel_genotype import CELL_OPS, CELL_TYPES, TrilevelGenotype, TrilevelTopology

WIDTH_MODES = ("sample", "argmax", "min", "max", "random")
DWS_EXPANSION = 4       # DwsBlock's inner width: 4·nf, not slimmed (operations.py DwsBlock)
RESIDUAL_SCALE = 0.2    # cell output 0.2·h + x (model_search_flexible.py Cell.forward)


def make_divisible(v: float, divisor: int) -> int:
    """slimmable_ops.py `make_divisible` (from TF slim): the nearest multiple of `divisor`,
    at least `divisor`, never more than 10% below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class SlimConv(nn.Conv2d):
    """A conv that runs the first c_out filters over the input's channels (USConv2d):
    weight[:c_out, :c_in]; a depthwise conv (groups > 1) runs its first c_out channels."""

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        c_out = self.out_channels if c_out is None else c_out
        depthwise = self.groups > 1
        weight = self.weight[:c_out] if depthwise else self.weight[:c_out, :x.shape[1]]
        bias = None if self.bias is None else self.bias[:c_out]
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation,
                        c_out if depthwise else 1)


class SkipConnect(nn.Module):
    """Identity; to another width the channels are cut or zero-padded (parameter-free)."""

    def __init__(self, c_in: int, c_out: int, c_mid: int) -> None:
        super().__init__()
        self.c_out = c_out

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        c_out, c = c_out or self.c_out, x.shape[1]
        return x[:, :c_out] if c_out <= c else F.pad(x, (0, 0, 0, 0, 0, c_out - c))


class Conv3x3(nn.Module):
    """3×3 conv + ReLU (operations.py Conv3x3)."""

    def __init__(self, c_in: int, c_out: int, c_mid: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.conv = SlimConv(c_in, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        return F.relu(self.conv(x, c_out or self.c_out))


class ResidualBlock(nn.Module):
    """relu(conv3×3(relu(conv3×3(x))) + conv1×1(x)) (operations.py BasicResidual, slimmable:
    the 1×1 skip is always there)."""

    def __init__(self, c_in: int, c_out: int, c_mid: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.conv1 = SlimConv(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = SlimConv(c_out, c_out, 3, padding=1, bias=False)
        self.skip = SlimConv(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        c = c_out or self.c_out
        return F.relu(self.conv2(F.relu(self.conv1(x, c)), c) + self.skip(x, c))


class DwsBlock(nn.Module):
    """relu(1×1 (c_mid -> c_out) ∘ relu ∘ depthwise 3×3 ∘ relu ∘ 1×1 (c_in -> c_mid) + 1×1 skip),
    c_mid = 4·nf whatever the widths (operations.py DwsBlock, `set_ratio`)."""

    def __init__(self, c_in: int, c_out: int, c_mid: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.conv1 = SlimConv(c_in, c_mid, 1, bias=False)
        self.conv2 = SlimConv(c_mid, c_mid, 3, padding=1, groups=c_mid, bias=False)
        self.conv3 = SlimConv(c_mid, c_out, 1, bias=False)
        self.skip = SlimConv(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        c = c_out or self.c_out
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(self.conv3(h, c) + self.skip(x, c))


OPS: dict[str, type[nn.Module]] = dict(zip(CELL_OPS, (SkipConnect, Conv3x3, ResidualBlock,
                                                       DwsBlock)))


def op_flops(name: str, c_in: float, c_out: float, c_mid: int) -> float:
    """Multiply-adds per LR pixel of one op (thop `count_convNd`: out elements × c_in/groups ×
    k², + 1 per output with a bias; ops have none). Channels may be expectations (tensors)."""
    if name == "skip_connect":
        return 0.0
    if name == "conv_3x3":
        return 9 * c_in * c_out
    if name == "residual_block":
        return 9 * c_in * c_out + 9 * c_out * c_out + c_in * c_out
    if name == "dws_block":
        return c_in * c_mid + 9 * c_mid + c_mid * c_out + c_in * c_out
    raise ValueError(f"unknown trilevel op {name!r}; known: {CELL_OPS}")


class TrilevelCell(nn.Module):
    """`ops_per_cell` slots in a chain, each a mixed op over CELL_OPS; output 0.2·h + x."""

    def __init__(self, nf: int, ops_per_cell: int, c_mid: int) -> None:
        super().__init__()
        self.slots = nn.ModuleList(nn.ModuleList(OPS[o](nf, nf, c_mid) for o in CELL_OPS)
                                   for _ in range(ops_per_cell))

    def forward(self, x: torch.Tensor, w: torch.Tensor, c_outs: Sequence[int],
                scores: torch.Tensor | None) -> torch.Tensor:
        # w: (slots, CELL_OPS) mixing weights; c_outs: channels each slot writes (last: nf);
        # scores: (slots − 1,) straight-through width scores or None. A weight of exactly 0
        # that needs no gradient skips its op (one-hot evaluation runs one op per slot).
        skip = None if w.requires_grad else w.tolist()
        h, last = x, len(self.slots) - 1
        for j, slot in enumerate(self.slots):
            h = sum(w[j, k] * op(h, c_outs[j]) for k, op in enumerate(slot)
                    if skip is None or skip[j][k] != 0)
            if scores is not None:  # MixedOp.forward: · r_score0 · r_score1
                h = h * (scores[j - 1] if j > 0 else 1) * (scores[j] if j < last else 1)
        return RESIDUAL_SCALE * h + x


class TrilevelSupernet(Supernet):
    """The trilevel search network; α per family (cell, kernel, network) over `topology.ops`.

    Defaults fit a CPU (nf 16, 4 cells of 3 ops, one stem cell, widths ½ ¾ 1, a chain: depth
    1..4); the reference's setting is nf=64, cells=5, ops_per_cell=5, widths=(4/12 .. 1),
    ups=2, stem_cells=1, divisor=8, scale=4 (configs/config_search_original.py)."""

    cell_types = CELL_TYPES

    def __init__(self, nf: int = 16, cells: int = 4, ops_per_cell: int = 3,
                 widths: Sequence[float] = (0.5, 0.75, 1.0), scale: int = 2, ups: int = 0,
                 stem_cells: int = 1, divisor: int = 4, in_channels: int = 3,
                 tanh_output: bool = True, alpha_generator: torch.Generator | None = None,
                 residual: bool = False) -> None:
        super().__init__()
        self.topology = TrilevelTopology("trilevel", cells, ops_per_cell, tuple(widths), ups,
                                         stem_cells, divisor=divisor)
        topo = self.topology
        self.ops = topo.ops
        self.edge_labels = topo.labels
        self.node_sizes = ()
        self.nf, self.scale, self.tanh_output = nf, scale, tanh_output
        self.residual = residual   # learn the residual over bicubic (`sr_output`)
        self.c_mid = DWS_EXPANSION * nf
        self.channels = tuple(min(nf, make_divisible(nf * w, divisor)) for w in topo.widths)
        self.width_mode: str | None = None  # None: "sample" in training, "argmax" in eval
        self.conv_first = nn.Conv2d(in_channels, nf, 3, padding=1)
        self.cells = nn.ModuleList(TrilevelCell(nf, ops_per_cell, self.c_mid)
                                   for _ in range(topo.n_cells))
        self.ups = nn.ModuleList(nn.Conv2d(nf, nf, 3, padding=1) for _ in range(topo.n_ups))
        self.conv_last = nn.Conv2d(nf, in_channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        # alphas: (rows, ops) per family, 1e-3·randn; op_mask_<t>: the family's own columns
        self.alphas = nn.ParameterDict({
            t: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(topo.n_edges_of(t), len(self.ops),
                                                           generator=alpha_generator))
            for t in CELL_TYPES})
        self.betas = nn.ParameterDict()
        self.masked = True
        self._cols = {t: [self.ops.index(o) for o in topo.family_ops(t)] for t in CELL_TYPES}
        for t in CELL_TYPES:
            mask = torch.from_numpy(topo.op_mask(t))
            self.register_buffer(f"op_mask_{t}", mask, persistent=False)
            with torch.no_grad():
                self.alphas[t].masked_fill_(~mask, 0.0)

    # --- widths --------------------------------------------------------------------------
    @contextlib.contextmanager
    def widths_as(self, mode: str | None) -> Iterator[None]:
        """Run forwards with this width mode (the sandwich rule: "min", "max", "random")."""
        if mode is not None and mode not in WIDTH_MODES:
            raise ValueError(f"width_mode must be one of {WIDTH_MODES} or None, got {mode!r}")
        before, self.width_mode = self.width_mode, mode
        try:
            yield
        finally:
            self.width_mode = before

    def _kernel_choice(self, wk: torch.Tensor) -> tuple[list[int], torch.Tensor | None]:
        """Width index per kernel row and the straight-through scores ("sample") or None.
        wk: (kernel rows, widths) mixing weights."""
        mode = self.width_mode or ("sample" if self.training else "argmax")
        rows, n = wk.shape
        if mode == "sample":
            # gumbel_softmax(log_softmax(ratio), hard=True): softmax(log w + g), then one-hot
            logits = torch.where(wk > 0, wk.clamp_min(1e-30).log(), -math.inf)
            g = -torch.log(-torch.log(torch.rand_like(wk) + 1e-20) + 1e-20)
            y = torch.softmax(logits + g, dim=-1)
            idx = y.argmax(dim=-1)
            y_st = F.one_hot(idx, n).to(y.dtype) - y.detach() + y
            return idx.tolist(), y_st.gather(-1, idx[:, None]).squeeze(-1)
        if mode == "argmax":
            return wk.argmax(dim=-1).tolist(), None
        if mode == "random":
            return torch.randint(n, (rows,)).tolist(), None
        if mode in ("min", "max"):
            return [0 if mode == "min" else n - 1] * rows, None
        raise ValueError(f"width_mode must be one of {WIDTH_MODES} or None, got {mode!r}")

    # --- forward -------------------------------------------------------------------------
    def _cell(self, i: int, h: torch.Tensor, wc: torch.Tensor, idx: list[int],
              scores: torch.Tensor | None) -> torch.Tensor:
        n = self.topology.ops_per_cell
        k = slice(i * (n - 1), (i + 1) * (n - 1))  # this cell's kernel rows
        c_outs = [self.channels[j] for j in idx[k]] + [self.nf]
        return self.cells[i](h, wc[i * n:(i + 1) * n], c_outs,
                             None if scores is None else scores[k])

    def forward(self, x: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        # x: (N, C, h, w) LR in [0, 1] -> (N, C, s·h, s·w)
        if weights is None:
            weights = self.mixing_weights()
        wc = weights["cell"][:, self._cols["cell"]]          # (cells·slots, 4)
        wk = weights["kernel"][:, self._cols["kernel"]]      # (cells·(slots−1), widths)
        gamma = weights["network"][0, self._cols["network"]]  # (candidates,)
        idx, scores = self._kernel_choice(wk)
        h = self.conv_first(x)
        for i in range(self.topology.stem_cells):
            h = self._cell(i, h, wc, idx, scores)
        nodes = self.topology.nodes
        # a node is computed when it or a descendant has a weight that is not exactly 0 (or
        # needs a gradient); children follow their parent in DFS order
        used = [True] * len(nodes) if gamma.requires_grad else [g != 0 for g in gamma.tolist()]
        need = list(used)
        for k in range(len(nodes) - 1, 0, -1):
            need[nodes[k].parent] |= need[k]
        feats = {0: h}
        for k, node in enumerate(nodes[1:], start=1):
            if need[k]:
                p = feats[node.parent]
                feats[k] = (self._cell(node.module, p, wc, idx, scores) if node.action == "cell"
                            else self.ups[node.module](p))
        out = sum(gamma[k] * feats[k] for k in feats if used[k])
        return sr_output(x, self.shuffle(self.conv_last(out)), self.scale, self.tanh_output,
                         self.residual)

    def order_loss(self) -> torch.Tensor:
        """`order_loss` of the raw network-level α along the tree's full paths."""
        return order_loss(self.alphas["network"][0, self._cols["network"]], self.topology.paths)


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling (Keys a = −0.5, as MATLAB / PIL; train/srdata.py `bicubic_up`)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False,
                         antialias=True)


def sr_output(x: torch.Tensor, y: torch.Tensor, scale: int, tanh_output: bool,
              residual: bool) -> torch.Tensor:
    """The network's image from the pixel-shuffled features y: the reference's
    (tanh(y) + 1) / 2 (model_search_flexible.py `NAS_GAN.forward`, `ENABLE_TANH`), or with
    `residual` bicubic(x) + y, the global skip of VDSR (Kim et al. 2016) that lets a small
    network on a CPU start at bicubic's PSNR and learn only what bicubic misses (our CPU
    presets; the reference has no such skip)."""
    if residual:
        return bicubic(x, scale) + y
    return (torch.tanh(y) + 1) / 2 if tanh_output else y


def order_loss(gamma: torch.Tensor,
               paths: Sequence[Sequence[int]] | None = None) -> torch.Tensor:
    """Σ over paths Σ_k (γ[p_{k+1}] − γ[p_k]) on the RAW network-level α
    (model_search_flexible.py `NAS_GAN._criterion`, "order loss": `sum(weight[1:] − weight[:-1])` per `path_index`,
    weighted by `loss_weight[4]`). Each path's sum telescopes to γ[leaf] − γ[root]: minimising it
    lowers the deepest candidate and raises the shallowest, sorting γ so that the tail of a path
    goes first (network-level compression). gamma: (candidates,); paths: node indices root to
    leaf (default: one path over all candidates in order, the chain)."""
    if paths is None:
        paths = [range(gamma.shape[0])]
    total = gamma.new_zeros(())
    for p in paths:
        g = gamma[list(p)]
        total = total + (g[1:] - g[:-1]).sum()
    return total


def expected_flops(model: TrilevelSupernet, weights: dict[str, torch.Tensor],
                   lr_hw: tuple[int, int]) -> torch.Tensor:
    """Multiply-adds of one LR image (1, C, h, w), differentiable in the mixing weights:
    Σ_i γ_i · (cost of the path to candidate i) + conv_first + conv_last, where a cell costs
    Σ_slots Σ_ops w · op_flops(E c_in, E c_out) and E c = Σ_widths p · channels (the kernel
    mixing weights p). At one-hot weights this is `flops(derive_network(...))` exactly.
    Counting as thop `count_convNd` (src/operations.py `forward_flops`): per output element
    c_in/groups·k² multiply-adds, + 1 with a bias."""
    topo, nf = model.topology, model.nf
    hw = lr_hw[0] * lr_hw[1]
    wc = weights["cell"][:, model._cols["cell"]]
    wk = weights["kernel"][:, model._cols["kernel"]]
    gamma = weights["network"][0, model._cols["network"]]
    chans = wk @ torch.tensor(model.channels, dtype=wk.dtype, device=wk.device)  # (rows,) E c
    n = topo.ops_per_cell

    def cell(i: int) -> torch.Tensor:
        c = [nf, *chans[i * (n - 1):(i + 1) * (n - 1)], nf]
        return sum(wc[i * n + j, k] * op_flops(o, c[j], c[j + 1], model.c_mid)
                   for j in range(n) for k, o in enumerate(CELL_OPS))

    up = nf * (nf * 9 + 1)
    cost = [sum((cell(i) for i in range(topo.stem_cells)), gamma.new_zeros(()))]
    for node in topo.nodes[1:]:
        cost.append(cost[node.parent] + (cell(node.module) if node.action == "cell" else up))
    c_in = model.conv_first.in_channels
    ends = nf * (c_in * 9 + 1) + model.conv_last.out_channels * (nf * 9 + 1)
    return hw * (ends + sum(g * c for g, c in zip(gamma, cost)))


def flops(net: nn.Module, lr_hw: tuple[int, int]) -> int:
    """Exact multiply-adds of `net` on one LR image (1, C, h, w): every Conv2d that runs
    counts out elements × (c_in/groups·k² + bias), as thop `count_convNd`; ReLU, additions,
    PixelShuffle and tanh count 0. The convs' shapes are read as they run (SlimConv slices)."""
    total = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        groups = out.shape[1] if m.groups > 1 else 1
        total += out.numel() * (inp[0].shape[1] // groups * k + (m.bias is not None))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    c_in = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
    try:
        with torch.no_grad():
            net(torch.zeros(1, c_in, *lr_hw, device=next(net.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total


def n_params(net: nn.Module) -> int:
    """Parameters of a (derived) network; for the supernet, everything but α."""
    if isinstance(net, Supernet):
        return net.n_weight_params()
    return sum(p.numel() for p in net.parameters())


class DerivedCell(nn.Module):
    """A fixed chain of ops at fixed widths; output 0.2·h + x (model_infer.py Cell)."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for op in self.ops:
            h = op(h)
        return RESIDUAL_SCALE * h + x


class DerivedTrilevelNet(nn.Module):
    """conv_first -> the output's path of cells and upconvs -> conv_last -> PixelShuffle
    (model_infer.py `NAS_GAN_Infer`, trilevelnas_x "B")."""

    def __init__(self, conv_first: nn.Conv2d, blocks: Sequence[nn.Module], conv_last: nn.Conv2d,
                 scale: int, tanh_output: bool, genotype: TrilevelGenotype) -> None:
        super().__init__()
        self.conv_first, self.conv_last = conv_first, conv_last
        self.blocks = nn.ModuleList(blocks)
        self.shuffle = nn.PixelShuffle(scale)
        self.tanh_output, self.scale = tanh_output, scale
        self.residual = False   # derive_network sets the supernet's
        self.genotype = genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_first(x)
        for block in self.blocks:
            h = block(h)
        return sr_output(x, self.shuffle(self.conv_last(h)), self.scale, self.tanh_output,
                         self.residual)


def _inherit(dst: nn.Module, src: nn.Module) -> nn.Module:
    """Copy each of src's parameters, cut to dst's shape (the leading corner), into dst:
    what USConv2d runs at that width (get_inherit_weight.py keeps the supernet's tensors)."""
    with torch.no_grad():
        for name, p in dst.named_parameters():
            p.copy_(src.get_parameter(name)[tuple(slice(0, n) for n in p.shape)])
    return dst


def derive_network(supernet: TrilevelSupernet, genotype: TrilevelGenotype) -> DerivedTrilevelNet:
    """The discrete network of `genotype`, inheriting the supernet's weights: the output's path
    (`TrilevelTopology.modules_of`), each cell's chosen ops at their chosen widths with the
    slimmable convs sliced to them. On the supernet's device; a fresh copy of the weights."""
    topo, nf = supernet.topology, supernet.nf
    genotype = topo.parse(str(genotype))  # checks cells, ops, widths and output
    width_of = dict(zip(topo.width_ops, supernet.channels))
    blocks: list[nn.Module] = []
    for kind, i in topo.modules_of(genotype.output):
        if kind == "up":
            blocks.append(_inherit(nn.Conv2d(nf, nf, 3, padding=1), supernet.ups[i]))
            continue
        c = [nf, *(width_of[w] for w in genotype.widths[i]), nf]
        blocks.append(DerivedCell([
            _inherit(OPS[o](c[j], c[j + 1], supernet.c_mid),
                     supernet.cells[i].slots[j][CELL_OPS.index(o)])
            for j, o in enumerate(genotype.ops[i])]))
    first, last = supernet.conv_first, supernet.conv_last
    net = DerivedTrilevelNet(
        _inherit(nn.Conv2d(first.in_channels, nf, 3, padding=1), first), blocks,
        _inherit(nn.Conv2d(nf, last.out_channels, 3, padding=1), last),
        supernet.scale, supernet.tanh_output, genotype)
    net.residual = supernet.residual
    return net.to(next(supernet.parameters()).device)
