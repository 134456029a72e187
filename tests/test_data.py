"""Datasets and batch streams: built-in data, seeded splits, torchvision loading from a root."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from darts_engine import DATASETS, ConfigError, SearchConfig
from darts_engine.data import DataError, load_search_data, make_shapes, random_shift

CPU = torch.device("cpu")


def test_digits_is_built_in_and_split_in_fixed_halves():
    cfg = SearchConfig(dataset="digits", batch_size=64)
    d = load_search_data(cfg, CPU)
    assert (len(d.train), len(d.held_out)) == (898, 899)
    assert d.train.steps_per_epoch == 14 and d.shape.in_channels == 1
    again = load_search_data(cfg.replace(seed=7), CPU)  # the split does not follow the run seed
    assert torch.equal(d.train.x, again.train.x)
    other = load_search_data(cfg.replace(split_seed=1), CPU)
    assert not torch.equal(d.train.x, other.train.x)


def test_streams_are_seeded_per_epoch_and_differ_between_epochs():
    cfg = SearchConfig(dataset="shapes", batch_size=32, data_limit=256)
    a, b = load_search_data(cfg, CPU), load_search_data(cfg, CPU)
    first = [y for _, y in a.train.epoch(0)]
    assert all(torch.equal(p, q) for p, q in zip(first, [y for _, y in b.train.epoch(0)]))
    assert not all(torch.equal(p, q) for p, q in zip(first, [y for _, y in a.train.epoch(1)]))
    # every training image appears once per epoch (drop_last aside)
    seen = torch.cat([x.flatten(1) for x, _ in a.train.epoch(2)])
    assert len(seen) == 128 and len(torch.unique(seen, dim=0)) == 128


def test_held_out_stream_cycles_for_long_epochs():
    d = load_search_data(SearchConfig(dataset="shapes", batch_size=32, data_limit=256,
                                      train_portion=0.75), CPU)
    assert d.train.steps_per_epoch == 6 and d.held_out.steps_per_epoch == 2
    assert len(list(d.held_out.epoch(0, n_batches=6))) == 6


def test_shapes_is_seeded_balanced_and_not_colour_coded():
    a, b = make_shapes(800, seed=3), make_shapes(800, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    counts = torch.bincount(a.y, minlength=8)
    assert counts.min() > 60
    # mean colour carries (almost) no class information
    means = torch.stack([a.x[a.y == k].mean() for k in range(8)])
    assert means.std() < 0.1


def test_random_shift_keeps_shape_and_moves_content():
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    g = torch.Generator().manual_seed(0)
    out = random_shift(x, 2, g, flip=False)
    assert out.shape == x.shape
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # nothing cut off
    assert not torch.equal(out, x)


def _idx(path, magic, arr):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def test_mnist_loads_from_a_local_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("t10k", 20)):
        _idx(raw / f"{split}-images-idx3-ubyte", 0x803, rng.integers(0, 255, (n, 28, 28)))
        _idx(raw / f"{split}-labels-idx1-ubyte", 0x801, rng.integers(0, 10, (n,)))
    d = load_search_data(SearchConfig(dataset="mnist", data_root=str(tmp_path), batch_size=16),
                         CPU)
    assert len(d.train) == 60 and d.shape.in_channels == 1 and d.shape.image_size == 28
    x, y = next(d.train.epoch(0))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32


def test_imagefolder_loads_user_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        folder = tmp_path / "train" / cls
        folder.mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(
                folder / f"{i}.png")
    d = load_search_data(SearchConfig(dataset="imagefolder", data_root=str(tmp_path),
                                      batch_size=4), CPU)
    assert d.shape.num_classes == 2 and d.shape.image_size == 32
    assert next(d.train.epoch(0))[0].shape == (4, 3, 32, 32)


def test_missing_torchvision_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as e:
        load_search_data(SearchConfig(dataset="cifar10", data_root=str(tmp_path)), CPU)
    msg = str(e.value)
    assert str(tmp_path) in msg and "cifar-10-batches-py" in msg and "--download" in msg


def test_batch_larger_than_split_is_a_config_error():
    with pytest.raises(ConfigError, match="batch_size must be <= 64"):
        load_search_data(SearchConfig(dataset="shapes", batch_size=100, data_limit=128), CPU)


def test_registry_lists_every_dataset():
    assert {"digits", "shapes", "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn",
            "imagefolder"} <= set(DATASETS.names())
