"""The discrete retrain networks (model/networks.py) and the retrain recipe's pieces that need no
training: parameter counts against the published ones, drop-path, the auxiliary head, cutout."""

from __future__ import annotations

import pytest
import torch

from darts_engine.model.genotype import parse_genotype
from darts_engine.model.networks import (
    EvalCell,
    InferCell,
    NetworkCIFAR,
    TinyNetwork,
    count_parameters,
    drop_path,
)

# quark0/darts cnn/genotypes.py DARTS_V2
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
# NATS-Bench topology arch index 1 (D-X-Y/NATS-Bench issue #18: CIFAR-10 Params=0.802 MB;
# issue #36 prints the same cell space's cost_info to 6 digits, 0.802426 at hp="12")
NB201_ARCH1 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
               "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def test_darts_v2_eval_network_has_the_published_size():
    # quark0 train.py logs "param size = 3.349342MB" for DARTS_V2 at C=36, 20 layers, CIFAR-10
    # (utils.count_parameters_in_MB: every parameter outside the auxiliary head, / 1e6)
    net = NetworkCIFAR(parse_genotype(DARTS_V2), c=36, layers=20, num_classes=10)
    assert count_parameters(net) == 3_349_342
    assert sum(p.numel() for p in net.parameters()) > count_parameters(net)  # aux excluded


def test_nb201_tiny_network_has_the_published_size():
    net = TinyNetwork(parse_genotype(NB201_ARCH1), c=16, cells_per_stage=5, num_classes=10)
    assert count_parameters(net) == 802_426


def test_nb201_none_edges_are_dropped():
    cell = InferCell(parse_genotype("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"), 4)
    assert len(cell.edge_ops) == 1
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(cell(x), torch.zeros_like(x))  # node 3 has no live input


def test_drop_path_zeroes_whole_samples_and_scales_the_rest():
    torch.manual_seed(0)
    x = torch.ones(1000, 2, 3, 3)
    y = drop_path(x, 0.2)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 1.25}
    assert (per_sample == per_sample[:, :1]).all()  # one draw per sample
    assert 0.15 < (per_sample[:, 0] == 0).float().mean() < 0.25
    assert torch.equal(drop_path(x, 0.0), x)


def _cell(normal: str) -> EvalCell:
    g = parse_genotype(f"Genotype(normal={normal}, normal_concat=[2, 3], "
                       f"reduce={normal}, reduce_concat=[2, 3])")
    return EvalCell(g, 4, 4, 4, reduction=False, reduction_prev=False)


def test_drop_path_is_never_applied_to_identity_and_only_in_training():
    cell = _cell("[('skip_connect', 0), ('skip_connect', 1), ('avg_pool_3x3', 0), "
                 "('max_pool_3x3', 1)]")
    torch.manual_seed(0)
    s0, s1 = torch.randn(64, 4, 6, 6), torch.randn(64, 4, 6, 6)
    out = cell(s0, s1, 0.5)  # training mode
    p0, p1 = cell.preprocess0(s0), cell.preprocess1(s1)  # batch-stat BN: the same again
    node0, node1 = out[:, :4], out[:, 4:]
    torch.testing.assert_close(node0, p0 + p1)  # two identity edges: never dropped
    avg = torch.nn.functional.avg_pool2d(p0, 3, 1, 1, count_include_pad=False)
    mx = torch.nn.functional.max_pool2d(p1, 3, 1, 1)
    kinds = []
    for i in range(64):  # each pool edge is either dropped (0) or kept and scaled by 1/0.5
        options = {(a, b): a * 2 * avg[i] + b * 2 * mx[i] for a in (0, 1) for b in (0, 1)}
        match = [k for k, v in options.items() if torch.allclose(node1[i], v, atol=1e-5)]
        assert match, f"sample {i} is no combination of dropped / kept pool edges"
        kinds.append(match[0])
    assert (0, 0) in kinds or (0, 1) in kinds or (1, 0) in kinds  # some edge was dropped
    assert (1, 1) in kinds
    cell.eval()
    torch.testing.assert_close(cell(s0, s1, 0.5), cell(s0, s1, 0.0))  # off in eval


def test_network_drop_path_is_off_in_eval():
    net = NetworkCIFAR(parse_genotype(DARTS_V2), c=4, layers=5, num_classes=3, in_channels=1,
                       image_size=8)
    net.eval()
    x = torch.randn(4, 1, 8, 8)
    net.drop_path_prob = 0.0
    ref = net(x)[0]
    net.drop_path_prob = 0.9
    torch.testing.assert_close(net(x)[0], ref)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_auxiliary_head_only_in_training(size):
    net = NetworkCIFAR(parse_genotype(DARTS_V2), c=4, layers=5, num_classes=3, in_channels=3,
                       image_size=size)
    x = torch.randn(2, 3, size, size)
    logits, aux = net.train()(x)
    assert logits.shape == aux.shape == (2, 3)
    assert net.eval()(x)[1] is None
    no_aux = NetworkCIFAR(parse_genotype(DARTS_V2), c=4, layers=5, num_classes=3,
                          image_size=size, auxiliary=False)
    assert no_aux.train()(x)[1] is None
