"""Datasets, registered by name, and the seeded batch streams the search loop draws from.

Built in (no download): `digits` (scikit-learn's bundled 8×8 digits, the default) and `shapes`
(a seeded procedural dataset). Through torchvision from a local root: `cifar10`, `cifar100`,
`mnist`, `fashion_mnist`, `svhn`, `imagefolder`; downloading only when asked.

Images are held in memory as tensors (uint8 or float) and batched by index, which is both faster
than a DataLoader for these sizes and exactly reproducible: the order of epoch e of stream s is
a permutation drawn from a generator seeded by (seed, s, e), so a run resumed at an epoch
boundary sees the same batches as an uninterrupted one. The training set is split once into
fixed, seeded halves: the w half and the held-out half (DARTS' 50/50 split of the CIFAR-10
training set, Liu et al. 2019; quark0 cnn/train_search.py `main`, which splits by index
where we split at random).

`augment=True` means what the reference code does on each dataset (`Augmentation`):
- CIFAR-10 / CIFAR-100: RandomCrop(32, padding=4) then RandomHorizontalFlip, on the raw image
  (padded with black, torchvision's fill=0) before normalising, drawn per sample, on BOTH
  halves: quark0 cnn/train_search.py draws the w and the α batches from one `train_data` built
  with utils.py `_data_transforms_cifar10`'s train transform, and AutoDL-Projects'
  `get_nas_search_loaders` (xautodl/datasets/get_dataset_with_transform.py) builds NB201's
  search loader the same way.
- every other dataset (no reference search code): our random shift by up to size/8 pixels
  (zero = the mean colour, padded after normalising) and flips only where they keep the label
  (natural images), on the w stream only, so the small built-in sets cannot simply be
  memorised by the weights while α and the validation metrics see the images as they are.
Evaluation passes (`BatchStream.ordered`, the whole split in order) are never augmented, as in
AutoDL's valid_loader (test transform). quark0's `infer` reads the augmented valid_queue; we
keep validation accuracy clean instead.

Over 400 lines for a reason: the dataset registry, the built-in and torchvision loaders with
their errors for people, the retrain test split and the two streams share one `ImageSet` shape;
the streams are a candidate to move out when a second task brings its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..model.spaces import DataShape
from ..registries import DATASETS

if TYPE_CHECKING:
    from ..config import SearchConfig


class DataError(RuntimeError):
    """A dataset could not be loaded; the message says where we looked and what to do."""


@dataclass(frozen=True)
class Augmentation:
    """What `augment=True` does on one dataset: a random crop of the image size after padding
    by `pad` pixels (0: size // 8), plus a horizontal flip where `ImageSet.flip`."""

    pad: int
    pad_raw: bool      # pad the raw image with 0 before normalising (torchvision RandomCrop)
    both_streams: bool  # the held-out (α) stream's batches too, not only the w stream's


# Our own, on data without reference search code: w stream only, padded in normalised space.
SHIFT = Augmentation(pad=0, pad_raw=False, both_streams=False)
# quark0 utils.py `_data_transforms_cifar10` / AutoDL get_dataset_with_transform.py, both halves.
CIFAR_CROP_FLIP = Augmentation(pad=4, pad_raw=True, both_streams=True)


@dataclass
class ImageSet:
    """Whole training set in memory. x: (N, C, H, W) uint8 or float32; y: (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    flip: bool  # horizontal flips are label-preserving (natural images, not digits)
    augmentation: Augmentation = SHIFT

    @property
    def shape(self) -> DataShape:
        return DataShape(self.x.shape[1], self.x.shape[-1], self.num_classes)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: Callable[[Path, bool], ImageSet]
    shape: DataShape
    n_train: int | None      # known size of the training set (None: depends on the folder)
    needs_root: bool
    how_to_get: str
    description: str


def _register(spec: DatasetSpec) -> None:
    DATASETS.register(spec.name, spec, spec.description)


# --- built-in datasets -----------------------------------------------------------------------

def _load_digits(root: Path, download: bool) -> ImageSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(d.target, dtype=torch.int64)
    return ImageSet(x, y, (float(x.mean()),), (float(x.std()),), 10, flip=False)


SHAPES_CLASSES = ("hbar", "vbar", "diag", "antidiag", "square", "plus", "disk", "ring")
SHAPES_N, SHAPES_SIZE = 4000, 16


def make_shapes(n: int = SHAPES_N, size: int = SHAPES_SIZE, seed: int = 0) -> ImageSet:
    """Coloured outlines on noisy backgrounds, at random positions and scales.

    The class is the shape, never the colour, position or brightness, so telling classes apart
    needs spatial filters (bars vs. diagonals vs. rings): learnable, not solvable by pooling.
    """
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, len(SHAPES_CLASSES), n)
    s = rng.integers(6, 11, n)[:, None, None]                         # box side
    x0 = (rng.random(n) * (size - s[:, 0, 0] + 1)).astype(int)[:, None, None]
    y0 = (rng.random(n) * (size - s[:, 0, 0] + 1)).astype(int)[:, None, None]
    yy, xx = np.mgrid[0:size, 0:size]
    u, v = xx[None] - x0, yy[None] - y0                             # (n, H, W) box coords
    inside = (u >= 0) & (u < s) & (v >= 0) & (v < s)
    mid = (s - 1) / 2.0
    r = np.hypot(u - mid, v - mid)
    masks = np.stack([
        inside & (np.abs(v - mid) <= 0.5),                             # hbar
        inside & (np.abs(u - mid) <= 0.5),                             # vbar
        inside & (u == v),                                             # diag
        inside & (u + v == s - 1),                                     # antidiag
        inside & ((u == 0) | (v == 0) | (u == s - 1) | (v == s - 1)),  # square outline
        inside & ((np.abs(v - mid) <= 0.5) | (np.abs(u - mid) <= 0.5)),  # plus
        r <= mid,                                                      # disk
        (r <= mid) & (r > mid - 1.5),                                  # ring
    ])[cls, np.arange(n)]                                              # (n, H, W)
    colour = rng.uniform(0.5, 1.0, (n, 3, 1, 1)) * rng.choice([-1.0, 1.0], (n, 1, 1, 1))
    background = rng.normal(0.0, 0.25, (n, 3, size, size)) + rng.uniform(-0.3, 0.3, (n, 3, 1, 1))
    img = background + masks[:, None] * colour
    x = torch.tensor(img, dtype=torch.float32)
    return ImageSet(x, torch.tensor(cls, dtype=torch.int64), (0.0, 0.0, 0.0),
                    tuple(float(v) for v in x.std(dim=(0, 2, 3))), len(SHAPES_CLASSES),
                    flip=False)


_register(DatasetSpec("digits", _load_digits, DataShape(1, 8, 10), 1797, False, "",
                      "scikit-learn's bundled 8×8 handwritten digits (1,797 images, offline)"))
_register(DatasetSpec("shapes", lambda root, dl: make_shapes(), DataShape(3, SHAPES_SIZE, 8),
                      SHAPES_N, False, "",
                      "procedural 16×16 coloured shapes, 8 classes, generated in memory"))


# --- torchvision datasets ----------------------------------------------------------------------

def _uint8_chw(arr: np.ndarray | torch.Tensor, hwc: bool) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(arr))
    if t.ndim == 3:            # (N, H, W) grayscale
        t = t.unsqueeze(1)
    elif hwc:
        t = t.permute(0, 3, 1, 2)
    return t.contiguous().to(torch.uint8)


def _torchvision(name: str, root: Path, download: bool, train: bool = True) -> ImageSet:
    import torchvision.datasets as tvd

    # (class, kwargs, HWC layout, mean, std, classes, flip)
    table = {
        "cifar10": (tvd.CIFAR10, {"train": True}, True, (0.4914, 0.4822, 0.4465),
                    (0.2470, 0.2435, 0.2616), 10, True),
        "cifar100": (tvd.CIFAR100, {"train": True}, True, (0.5071, 0.4865, 0.4409),
                     (0.2673, 0.2564, 0.2762), 100, True),
        "mnist": (tvd.MNIST, {"train": True}, False, (0.1307,), (0.3081,), 10, False),
        "fashion_mnist": (tvd.FashionMNIST, {"train": True}, False, (0.2860,), (0.3530,), 10,
                          True),
        "svhn": (tvd.SVHN, {"split": "train"}, False, (0.4377, 0.4438, 0.4728),
                 (0.1980, 0.2010, 0.1970), 10, False),
    }
    cls, kwargs, hwc, mean, std, n_cls, flip = table[name]
    if not train:  # the official test split (retrains only; searches never read it)
        kwargs = {"split": "test"} if name == "svhn" else {"train": False}
    try:
        ds = cls(str(root), download=download, **kwargs)
    except (RuntimeError, OSError) as e:
        raise DataError(_missing_message(name, root, str(e))) from None
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    x = _uint8_chw(ds.data, hwc)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    # Normalisation constants are in [0, 1] units; uint8 images are scaled in the stream.
    aug = CIFAR_CROP_FLIP if name in ("cifar10", "cifar100") else SHIFT
    return ImageSet(x, y, mean, std, n_cls, flip, aug)


IMAGEFOLDER_SIZE = 32


def _imagefolder(root: Path, download: bool) -> ImageSet:
    """root/train/<class>/*.png (or root/<class>/...), resized to 32×32 RGB."""
    import torchvision.datasets as tvd
    from torchvision import transforms

    folder = root / "train" if (root / "train").is_dir() else root
    tf = transforms.Compose([transforms.Resize((IMAGEFOLDER_SIZE, IMAGEFOLDER_SIZE)),
                             transforms.PILToTensor()])
    try:
        ds = tvd.ImageFolder(str(folder), transform=lambda im: tf(im.convert("RGB")))
    except (FileNotFoundError, OSError) as e:
        raise DataError(_missing_message("imagefolder", root, str(e))) from None
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    x = torch.stack(xs)
    xf = x.float() / 255.0
    mean = tuple(float(v) for v in xf.mean(dim=(0, 2, 3)))
    std = tuple(max(1e-3, float(v)) for v in xf.std(dim=(0, 2, 3)))
    return ImageSet(x, torch.tensor(ys), mean, std, len(ds.classes), flip=True)


_HOW = {
    "cifar10": "cifar-10-batches-py/ (the extracted cifar-10-python.tar.gz)",
    "cifar100": "cifar-100-python/ (the extracted cifar-100-python.tar.gz)",
    "mnist": "MNIST/raw/ (train-images-idx3-ubyte etc.)",
    "fashion_mnist": "FashionMNIST/raw/",
    "svhn": "train_32x32.mat",
    "imagefolder": "train/<class name>/<images> (or <class name>/<images>)",
}


def _missing_message(name: str, root: Path, detail: str) -> str:
    return (f"dataset {name!r} was not found under {root.resolve()} (looked for {_HOW[name]}). "
            f"Put the files there, point data_root (--data-root) at their folder, or allow "
            f"downloading with download=True (--download). Detail: {detail}")


for _name, _shape, _n, _desc in [
    ("cifar10", DataShape(3, 32, 10), 50_000, "CIFAR-10 (torchvision; local root)"),
    ("cifar100", DataShape(3, 32, 100), 50_000, "CIFAR-100 (torchvision; local root)"),
    ("mnist", DataShape(1, 28, 10), 60_000, "MNIST (torchvision; local root)"),
    ("fashion_mnist", DataShape(1, 28, 10), 60_000, "Fashion-MNIST (torchvision; local root)"),
    ("svhn", DataShape(3, 32, 10), 73_257, "SVHN train split (torchvision; local root)"),
]:
    _register(DatasetSpec(_name, lambda root, dl, n=_name: _torchvision(n, root, dl), _shape, _n,
                          True, _HOW[_name], _desc))
_register(DatasetSpec("imagefolder", _imagefolder, DataShape(3, IMAGEFOLDER_SIZE, 0), None, True,
                      _HOW["imagefolder"], "your own images: data_root/train/<class>/*.png"))


def check_config(cfg: SearchConfig) -> None:
    """Checks that need the dataset's metadata but not its files (run before a run is created)."""
    from ..config import ConfigError

    spec: DatasetSpec = DATASETS.get(cfg.dataset)
    if not isinstance(spec, DatasetSpec):  # another task's data (tasks/sisr.py): its own checks
        return
    if spec.needs_root and not cfg.download and not Path(cfg.data_root).is_dir():
        raise ConfigError(f"data_root {cfg.data_root!r} does not exist; create it and put "
                          f"{spec.name} there ({spec.how_to_get}), or turn download on",
                          field="data_root")
    if spec.n_train is not None:
        n = spec.n_train if cfg.data_limit == 0 else min(spec.n_train, cfg.data_limit)
        _check_batch(cfg, n)


def _check_batch(cfg: SearchConfig, n: int) -> None:
    from ..config import ConfigError

    n_w = int(math.floor(n * cfg.train_portion))
    n_h = n - n_w
    smallest = min(n_w, n_h)
    if cfg.batch_size > smallest:
        raise ConfigError(
            f"batch_size must be <= {smallest} (the smaller half of {n} {cfg.dataset} training "
            f"images split at train_portion={cfg.train_portion:g}), got {cfg.batch_size}",
            field="batch_size")


# --- splits and streams ------------------------------------------------------------------------

class BatchStream:
    """Seeded minibatches from one split. `epoch(e)` is the persistent iterator of epoch e.

    With `augment`, every batch of `epoch` is augmented as `data.augmentation` says, with
    offsets and flips drawn per sample from the epoch's seeded generator; `ordered` never is.
    """

    def __init__(self, data: ImageSet, idx: torch.Tensor, batch_size: int, seed: int,
                 stream: int, augment: bool, device: torch.device) -> None:
        self.x = data.x[idx].to(device)
        self.y = data.y[idx].to(device)
        self.batch_size, self.seed, self.stream = batch_size, seed, stream
        self.augment, self.flip, self.device = augment, data.flip, device
        self.augmentation = data.augmentation
        scale = 255.0 if data.x.dtype == torch.uint8 else 1.0
        shape = (1, -1, 1, 1)
        self._mean = torch.tensor(data.mean, device=device).view(shape) * scale
        self._std = torch.tensor(data.std, device=device).view(shape) * scale

    def __len__(self) -> int:
        return len(self.y)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.y) // self.batch_size  # drop_last: every step has the same shape

    def _generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.stream * 7919 + epoch)

    def epoch(self, epoch: int, n_batches: int | None = None) -> Iterator[tuple[torch.Tensor,
                                                                               torch.Tensor]]:
        """Batches of epoch `epoch`; with n_batches > steps_per_epoch it reshuffles and cycles."""
        g = self._generator(epoch)
        n_batches = self.steps_per_epoch if n_batches is None else n_batches
        done = 0
        while done < n_batches:
            perm = torch.randperm(len(self.y), generator=g).to(self.device)
            for k in range(min(self.steps_per_epoch, n_batches - done)):
                idx = perm[k * self.batch_size:(k + 1) * self.batch_size]
                yield self._prepare(self.x[idx], g), self.y[idx]
                done += 1

    def ordered(self, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in order, unaugmented (for evaluation)."""
        for i in range(0, len(self.y), batch_size):
            yield self._normalise(self.x[i:i + batch_size]), self.y[i:i + batch_size]

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self._mean) / self._std

    def _prepare(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if not self.augment:
            return self._normalise(x)
        aug = self.augmentation
        pad = aug.pad or max(1, x.shape[-1] // 8)
        if aug.pad_raw:  # torchvision: RandomCrop(padding=pad) on the raw image, then Normalize
            return self._normalise(random_shift(x.float(), pad, g, self.flip))
        return random_shift(self._normalise(x), pad, g, self.flip)


def random_shift(x: torch.Tensor, pad: int, g: torch.Generator, flip: bool) -> torch.Tensor:
    """Random crop after zero padding by `pad` (and optional horizontal flip), per sample:
    offsets uniform in [0, 2·pad] per axis, a flip with probability ½ (torchvision's
    RandomCrop and RandomHorizontalFlip), drawn from `g`."""
    b = x.shape[0]
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    mirror = torch.rand(b, generator=g) < 0.5 if flip else None
    return crop_flip(x, pad, oy, ox, mirror)


def crop_flip(x: torch.Tensor, pad: int, oy: torch.Tensor, ox: torch.Tensor,
              mirror: torch.Tensor | None) -> torch.Tensor:
    """x: (B, C, H, W), zero-padded by `pad`; sample i is cropped at rows oy[i]:oy[i]+H and
    columns ox[i]:ox[i]+W of the padded image, then mirrored left-right where mirror[i]."""
    b, _, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (oy.to(dev)[:, None] + torch.arange(h, device=dev))[:, :, None]   # (B, H, 1)
    cols = (ox.to(dev)[:, None] + torch.arange(w, device=dev))[:, None, :]   # (B, 1, W)
    if mirror is not None:
        cols = torch.where(mirror.to(dev)[:, None, None], cols.flip(-1), cols)
    out = padded[torch.arange(b, device=dev)[:, None, None], :, rows, cols]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


@dataclass
class SearchData:
    train: BatchStream     # w stream (and α stream for single-level)
    held_out: BatchStream  # α stream for bi-level; validation metrics for every algorithm
    shape: DataShape


def load_search_data(cfg: SearchConfig, device: torch.device) -> SearchData:
    """Load the dataset, split it into fixed seeded halves and build the two streams."""
    spec: DatasetSpec = DATASETS.get(cfg.dataset)
    data = spec.loader(Path(cfg.data_root), cfg.download)
    n_total = len(data.y)
    split = torch.randperm(n_total, generator=torch.Generator().manual_seed(cfg.split_seed))
    if cfg.data_limit:
        split = split[:cfg.data_limit]
    _check_batch(cfg, len(split))
    n_w = int(math.floor(len(split) * cfg.train_portion))
    train = BatchStream(data, split[:n_w], cfg.batch_size, cfg.seed, 0, cfg.augment, device)
    # The held-out half is augmented only where the reference augments the α batches too.
    held_augment = cfg.augment and data.augmentation.both_streams
    held = BatchStream(data, split[n_w:], cfg.batch_size, cfg.seed, 1, held_augment, device)
    return SearchData(train, held, data.shape)


# --- the retrain's test split: images no search reads ------------------------------------------

# `shapes`: fresh samples from a seed no search uses (searches always call make_shapes() with
# seed 0). `digits`: scikit-learn bundles only 1,797 images and a search with data_limit=0 reads
# all of them, so no digit is unseen by every search; the retrain holds out a fixed 20% share
# (its weights never see it) and says that the search may have.
SHAPES_TEST_SEED, SHAPES_TEST_N = 1, 1000
DIGITS_TEST_SHARE, DIGITS_TEST_SEED = 0.2, 20_141_120


@dataclass
class RetrainSplit:
    train: ImageSet   # what the retrain trains on
    test: ImageSet    # what it reports test accuracy on, normalised with the train set's stats
    note: str         # where the test images come from, and whether a search could have seen them


def _subset(data: ImageSet, idx: torch.Tensor, like: ImageSet | None = None) -> ImageSet:
    stats = like or data
    return ImageSet(data.x[idx], data.y[idx], stats.mean, stats.std, data.num_classes,
                    data.flip, data.augmentation)


def load_test_split(dataset: str, data_root: str | Path = "data",
                    download: bool = False) -> RetrainSplit:
    """The retrain's train and test sets for `dataset` (see the constants above)."""
    spec: DatasetSpec = DATASETS.get(dataset)
    root = Path(data_root)
    if dataset == "shapes":
        train = make_shapes()
        test = make_shapes(SHAPES_TEST_N, seed=SHAPES_TEST_SEED)
        return RetrainSplit(train, _subset(test, torch.arange(len(test.y)), like=train),
                         f"{SHAPES_TEST_N} fresh shapes from seed {SHAPES_TEST_SEED}, which no "
                         f"search generates")
    if dataset == "digits":
        data = spec.loader(root, download)
        perm = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(
            DIGITS_TEST_SEED))
        n_test = int(len(perm) * DIGITS_TEST_SHARE)
        return RetrainSplit(_subset(data, perm[n_test:]), _subset(data, perm[:n_test]),
                         f"a fixed {DIGITS_TEST_SHARE:.0%} share of digits ({n_test} images) "
                         f"the retrain never trains on; a search with data_limit=0 reads all "
                         f"1,797 digits, so the searched cell may have seen them")
    if dataset == "imagefolder":
        if not (root / "test").is_dir():
            raise DataError(f"data_root {root.resolve()} has no test/<class>/ folder; a retrain "
                            f"on imagefolder reports accuracy on images under test/")
        train = _imagefolder(root, download)
        test = _imagefolder(root / "test", download)
        return RetrainSplit(train, _subset(test, torch.arange(len(test.y)), like=train),
                         "the images under data_root/test/")
    train = spec.loader(root, download)
    return RetrainSplit(train, _torchvision(dataset, root, download, train=False),
                     f"the official {dataset} test split, which searches never read")
