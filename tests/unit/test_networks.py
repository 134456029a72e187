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


# --- the recipe's pieces (train/retrain.py) ----------------------------------------------------

def test_cutout_hole_has_length_squared_zeroed_pixels_inside_and_is_clipped_at_borders():
    from darts_engine.train.retrain import cutout, cutout_mask

    mask = cutout_mask(16, 16, 8, torch.tensor([8, 0, 15]), torch.tensor([8, 0, 15]))
    zeros = (mask == 0).flatten(1).sum(1).tolist()
    # centred: 8×8; centre (0, 0): rows and columns 0..3 (4×4); centre (15, 15): 11..15 (5×5)
    assert zeros == [64, 16, 25]
    assert (mask[0, 4:12, 4:12] == 0).all() and mask[0].sum() == 256 - 64
    x = torch.randn(32, 3, 32, 32) + 10.0  # no pixel is 0 before
    y = cutout(x, 16, torch.Generator().manual_seed(0))
    hole = (y == 0).all(dim=1)  # the same hole on every channel
    assert ((y == 0).any(dim=1) == hole).all()
    per_sample = hole.flatten(1).sum(1)
    assert (per_sample <= 256).all() and (per_sample >= 64).all() and (per_sample == 256).any()
    torch.testing.assert_close(y[~hole[:, None].expand_as(y)], x[~hole[:, None].expand_as(x)])


def test_retrain_config_names_the_field():
    from darts_engine.config import ConfigError
    from darts_engine.train.retrain import RetrainConfig, check_genotype, preset

    for kwargs, name in [({"recipe": "resnet"}, "recipe"), ({"epochs": 0}, "epochs"),
                         ({"drop_path_prob": 1.0}, "drop_path_prob"), ({"lr": -1.0}, "lr"),
                         ({"dataset": "nope"}, "dataset"), ({"layers": 2}, "layers"),
                         ({"device": "tpu"}, "device")]:
        with pytest.raises(ConfigError) as e:
            RetrainConfig(**kwargs)
        assert e.value.field == name, kwargs
    with pytest.raises(ConfigError) as e:
        RetrainConfig.from_dict({"epoch": 3})
    assert e.value.field == "epoch"
    with pytest.raises(ConfigError, match="NB201") as e:
        check_genotype(preset("nb201"), DARTS_V2)
    assert e.value.field == "genotype"
    with pytest.raises(ConfigError, match="DARTS") as e:
        check_genotype(preset("darts-eval"), NB201_ARCH1)
    assert e.value.field == "genotype"
    with pytest.raises(ConfigError, match="not a genotype"):
        check_genotype(preset("darts-eval"), "conv all the way")


def test_presets_follow_their_references():
    from darts_engine.train.retrain import cosine_lr, preset

    d, n = preset("darts-eval"), preset("nb201", epochs=200)
    assert (d.lr, d.momentum, d.weight_decay, d.grad_clip, d.auxiliary_weight,
            d.drop_path_prob, d.cutout, d.nesterov) == (0.025, 0.9, 3e-4, 5.0, 0.4, 0.2, True,
                                                        False)
    assert (n.lr, n.momentum, n.weight_decay, n.nesterov, n.cutout, n.epochs) == (
        0.1, 0.9, 5e-4, True, False, 200)
    assert cosine_lr(n, 0) == 0.1 and cosine_lr(n, 100) == pytest.approx(0.05)
    assert cosine_lr(n, 200) == pytest.approx(0.0, abs=1e-12)
