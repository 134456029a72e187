"""Datasets and batch streams: built-in data, seeded splits, torchvision loading from a root."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from darts_engine import DATASETS, ConfigError, SearchConfig
from darts_engine.train.data import DataError, load_search_data, make_shapes, random_shift

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


# --- augment: what the reference code does, per dataset ----------------------------------------

class _FakeCIFAR10:
    """Stands in for torchvision's CIFAR10 (whose loader checks the real files' md5): the same
    attributes (`data` (N, 32, 32, 3) uint8 HWC, `targets`), a chosen constant image."""

    fill = 200

    def __init__(self, root, download=False, train=True):
        self.data = np.full((64, 32, 32, 3), self.fill, dtype=np.uint8)
        self.data[:, 0, 0, :] = 10  # one marked corner pixel, so flips and shifts show
        self.targets = list(np.arange(64) % 10)


@pytest.fixture
def fake_cifar(monkeypatch, tmp_path):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _FakeCIFAR10)
    return SearchConfig(dataset="cifar10", data_root=str(tmp_path), batch_size=16,
                        augment=True)


CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _normalised(raw: float) -> torch.Tensor:
    """A raw pixel value (0..255) per channel as the streams normalise it: (raw/255 − m) / s."""
    return torch.tensor([(raw / 255 - m) / s for m, s in zip(CIFAR_MEAN, CIFAR_STD)])


def test_cifar_augment_crops_and_flips_both_training_streams(fake_cifar):
    """quark0 train_search.py draws the w and the α batches from one `train_data` carrying
    `_data_transforms_cifar10`'s train transform (RandomCrop(32, padding=4), then
    RandomHorizontalFlip); AutoDL's get_nas_search_loaders does the same for NB201."""
    d = load_search_data(fake_cifar, CPU)
    inside, black = _normalised(_FakeCIFAR10.fill), _normalised(0)
    for stream in (d.train, d.held_out):
        x = torch.cat([xb for e in range(3) for xb, _ in stream.epoch(e)])  # (96, 3, 32, 32)
        # every pixel is the image's value or a zero-padded pixel: RandomCrop pads the raw
        # image with 0 (black) before ToTensor/Normalize, not with the mean colour
        is_inside = torch.isclose(x, inside.view(1, 3, 1, 1)).all(1)
        is_black = torch.isclose(x, black.view(1, 3, 1, 1)).all(1)
        is_mark = torch.isclose(x, _normalised(10).view(1, 3, 1, 1)).all(1)
        assert (is_inside | is_black | is_mark).all()
        assert is_black.any(), "no padding reached the crops: the stream is not augmented"
        # offsets are drawn per sample: the padded borders differ between samples
        assert len({m.numpy().tobytes() for m in is_black}) > 30
        # the marked top-left pixel lands left (no flip) or, mirrored, right of the centre
        cols = torch.nonzero(is_mark)[:, 2]
        assert (cols < 16).any() and (cols >= 16).any()
    # reproducible: the same seed gives the same crops, another epoch other ones
    again = load_search_data(fake_cifar, CPU)
    assert torch.equal(next(d.held_out.epoch(0))[0], next(again.held_out.epoch(0))[0])
    assert not torch.equal(next(d.held_out.epoch(0))[0], next(d.held_out.epoch(1))[0])


def test_evaluation_pass_stays_unaugmented(fake_cifar):
    d = load_search_data(fake_cifar, CPU)
    x = torch.cat([xb for xb, _ in d.held_out.ordered()])
    raw = d.held_out.x.float() / 255
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (raw - mean) / std, atol=1e-5)


def test_crop_flip_equals_a_hand_crop_of_the_zero_padded_image():
    from darts_engine.train.data import crop_flip

    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (2, 3, 32, 32), generator=g).float()
    oy, ox, mirror = torch.tensor([0, 7]), torch.tensor([8, 3]), torch.tensor([False, True])
    out = crop_flip(x, 4, oy, ox, mirror)
    for i in range(2):
        canvas = torch.zeros(3, 40, 40)   # the image pasted onto black, 4 pixels each side
        canvas[:, 4:36, 4:36] = x[i]
        crop = canvas[:, int(oy[i]):int(oy[i]) + 32, int(ox[i]):int(ox[i]) + 32]
        if mirror[i]:
            crop = torch.flip(crop, dims=(-1,))
        assert torch.equal(out[i], crop)


def test_builtin_data_augment_shifts_the_training_stream_only():
    """Our own choice on the built-in data (no reference code): w batches are shifted so the
    small sets cannot be memorised; α and the validation metrics keep the images as they are."""
    d = load_search_data(SearchConfig(dataset="digits", batch_size=64, augment=True), CPU)

    def unchanged(stream):
        rows = stream._normalise(stream.x).flatten(1)
        x, _ = next(stream.epoch(0))
        return [bool((rows == r).all(1).any()) for r in x.flatten(1)]

    assert sum(unchanged(d.train)) < 16       # shifted (a shift by 0 in both axes is rare)
    assert all(unchanged(d.held_out))         # every α batch row is an image as it is
