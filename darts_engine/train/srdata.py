"""Super-resolution data: built-in photos or local DIV2K / Set5 / Set14, bicubic LR, patch streams.

The protocol is the one SR search and training code shares (EDSR, Lim et al. 2017,
sanghyun-son/EDSR-PyTorch src/data/srdata.py `SRData` and common.py `get_patch`, `augment`;
BasicSR basicsr/data/transforms.py `paired_random_crop`, `augment`; the trilevel SR search in
hanyao8/DA-NAS-SISR train_search.py `main` and src/datasets.py `ImageDataset`):
- HR images are cropped to a multiple of the scale (`modcrop`) and the LR image is their
  bicubic downscaling with antialiasing (`bicubic_down`): torch's antialiased bicubic, the Keys
  kernel with a = -0.5 widened by the scale, which is what MATLAB's `imresize` and PIL compute
  (the borders are handled as PIL does, so it is close to, not bit-identical with, the LR files
  made with MATLAB that ship with DIV2K);
- a training sample is a random HR patch of lr_patch × scale pixels from a random image, a
  random flip / 90° rotation (one of the 8 symmetries of the square), and the LR patch made
  from that augmented HR patch, so LR and HR stay aligned;
- the training images are split once, by image and seeded, into the w half and the α half
  (DA-NAS-SISR: the first and the last `train_portion` of the sorted files; we shuffle first);
- the evaluation set is fixed: the centre crop (`eval_crop` HR pixels) of each test image, the
  same every epoch, and never used for training. Full test images come from `sr_test_set`.

Built in (no download, `builtin_photos`): 13 photos from scikit-image's wheel and scikit-learn's
two sample photos; the licences are in `BUILTIN_PHOTOS`. Five of them, named in `BUILTIN_TEST`,
are the "Set5-like" test set; the other ten are the training images. Local real data: the usual
DIV2K / Set5 / Set14 folder layouts under a data root (`SR_SOURCES`, `SR_TEST_SETS`), read,
never downloaded.

These are not `DatasetSpec`s (train/data.py): those load labelled images of one size, and SR
needs variable-size HR images and (lr, hr) pairs. `SR_SOURCES` is the registry of SR data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from ..model.spaces import DataShape
from .data import DataError

SCALES = (2, 3, 4)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


# --- bicubic resampling and the square's symmetries -------------------------------------------

def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop (..., H, W) to multiples of `scale`, keeping the top-left corner (EDSR/BasicSR)."""
    h, w = x.shape[-2:]
    return x[..., :h - h % scale, :w - w % scale]


def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """hr: (N, C, H, W) float in [0, 1] -> LR (N, C, H // scale, W // scale), antialiased bicubic
    after cropping HR to multiples of `scale`; clamped to [0, 1] as an image file would be."""
    hr = modcrop(hr, scale)
    h, w = hr.shape[-2:]
    lr = F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return lr.clamp(0.0, 1.0)


def bicubic_up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """lr: (N, C, h, w) -> (N, C, h·scale, w·scale), the bicubic reference line of SR papers.
    antialias=True selects the a = -0.5 kernel of MATLAB/PIL (torch's plain bicubic uses
    a = -0.75); upscaling widens nothing, so it is plain bicubic interpolation."""
    h, w = lr.shape[-2:]
    up = F.interpolate(lr, size=(h * scale, w * scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return up.clamp(0.0, 1.0)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on (..., H, W): k % 4 quarter turns, then a
    left-right flip when k >= 4 (EDSR common.py `augment`: hflip, vflip, rot90)."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


# --- images: built in and from folders ---------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    name: str      # the function in skimage.data, or the file in load_sample_images
    origin: str    # "scikit-image" or "scikit-learn"
    licence: str   # as the package's own documentation states it


# Licences from each skimage.data function's docstring and load_sample_images().DESCR. Left out:
# images whose docs state no licence (page, moon, ...), synthetic ones (colorwheel, logo), and
# text (172 px high: smaller than an ×4 patch of 48 LR pixels).
BUILTIN_PHOTOS = (
    Photo("astronaut", "scikit-image", "public domain (NASA)"),
    Photo("chelsea", "scikit-image", "CC0 (Stefan van der Walt)"),
    Photo("coffee", "scikit-image", "CC0 (Rachel Michetti)"),
    Photo("rocket", "scikit-image", "public domain (SpaceX)"),
    Photo("flower", "scikit-learn", "CC BY 2.0 (vultilion, Flickr)"),
    Photo("china", "scikit-learn", "CC BY 2.0 (danielbuechele, Flickr)"),
    Photo("immunohistochemistry", "scikit-image", "no known copyright restrictions (CMMI)"),
    Photo("hubble_deep_field", "scikit-image", "public domain (NASA)"),
    Photo("camera", "scikit-image", "CC0 (Lav Varshney)"),
    Photo("coins", "scikit-image", "no known copyright restrictions (Brooklyn Museum)"),
    Photo("brick", "scikit-image", "CC0 (CC0Textures)"),
    Photo("grass", "scikit-image", "CC0 (linolafett, DeviantArt)"),
    Photo("gravel", "scikit-image", "CC0 (CC0Textures)"),
    Photo("cell", "scikit-image", "CC0 (Paul Müller et al.)"),
    Photo("retina", "scikit-image", "CC0 (Mikael Häggström)"),
)
# The "Set5-like" test set: a face, an animal, an object, a scene and a flower (Set5 has a
# baby, a bird, a butterfly, a head and a woman). Never used for training.
BUILTIN_TEST = ("astronaut", "chelsea", "coffee", "rocket", "flower")


def _rgb_chw(arr: np.ndarray) -> torch.Tensor:
    """(H, W), (H, W, 3) or (H, W, 4) uint8 -> (3, H, W) uint8; gray is repeated, alpha dropped."""
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    # torch.tensor copies: scikit-learn's sample images are read-only arrays
    return torch.tensor(arr[..., :3]).permute(2, 0, 1).contiguous()


def builtin_photos() -> dict[str, torch.Tensor]:
    """Every photo of BUILTIN_PHOTOS by name, as (3, H, W) uint8 RGB on the CPU (gray -> RGB)."""
    try:
        from skimage import data as skdata
    except ImportError:
        raise DataError("the built-in super-resolution photos come from scikit-image; install "
                        "it (pip install scikit-image) or use a local data source") from None
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    sklearn_photos = {Path(f).stem: im for f, im in zip(sample.filenames, sample.images)}
    return {p.name: _rgb_chw(getattr(skdata, p.name)() if p.origin == "scikit-image"
                             else sklearn_photos[p.name])
            for p in BUILTIN_PHOTOS}


def folder_images(folder: str | Path, limit: int = 0) -> dict[str, torch.Tensor]:
    """The .png/.jpg/.bmp files directly inside `folder` (the first `limit` if > 0), by file
    stem in sorted order, as (3, H, W) uint8 RGB on the CPU."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder.resolve()} does not exist; put the HR images "
                        f"({', '.join(IMAGE_SUFFIXES)}) there or point data_root elsewhere")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"image folder {folder.resolve()} holds no images (looked for "
                        f"{', '.join(IMAGE_SUFFIXES)} files directly inside it)")
    out = {}
    for path in files[:limit] if limit else files:
        try:
            with Image.open(path) as im:
                out[path.stem] = _rgb_chw(np.asarray(im.convert("RGB")))
        except OSError as e:
            raise DataError(f"could not read the image {path.resolve()}: {e}") from None
    return out


# Where the usual layouts keep the HR images, relative to the data root: EDSR-PyTorch
# (DIV2K/DIV2K_train_HR, benchmark/Set5/HR), BasicSR (DIV2K/DIV2K_train_HR, Set5/GTmod12), flat.
SR_TEST_SETS: dict[str, tuple[str, ...]] = {
    "builtin": (),
    "set5": ("Set5/HR", "Set5/GTmod12", "Set5/original", "benchmark/Set5/HR", "Set5"),
    "set14": ("Set14/HR", "Set14/GTmod12", "Set14/original", "benchmark/Set14/HR", "Set14"),
    "div2k-valid": ("DIV2K/DIV2K_valid_HR", "DIV2K_valid_HR"),
}
DIV2K_TRAIN = ("DIV2K/DIV2K_train_HR", "DIV2K_train_HR")


@dataclass(frozen=True)
class SRSource:
    name: str
    description: str
    train: tuple[str, ...]  # folders that may hold the training HR images; () = built in
    test: str               # the key in SR_TEST_SETS whose images are the evaluation set


SR_SOURCES: dict[str, SRSource] = {s.name: s for s in (
    SRSource("builtin", "15 public-domain / CC0 / CC BY photos shipped with scikit-image and "
             "scikit-learn (10 to train, 5 \"Set5-like\" to test), offline", (), "builtin"),
    SRSource("div2k", "DIV2K's 800 training HR images from data_root, tested on Set5 from "
             "data_root (never downloaded)", DIV2K_TRAIN, "set5"),
)}


def find_folder(root: str | Path, candidates: tuple[str, ...], what: str) -> Path:
    """The first of root/candidate that is a folder holding images, else a DataError that names
    every folder looked in."""
    root = Path(root)
    for c in candidates:
        folder = root / c
        if folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            return folder
    looked = ", ".join(str(root.resolve() / c) for c in candidates)
    raise DataError(f"no {what} HR images found under data_root {root.resolve()} (looked in "
                    f"{looked}); each must hold the HR images as .png/.jpg files directly "
                    f"inside it (e.g. {candidates[0]}/0001.png). Put them there or point "
                    f"data_root at the folder above them; nothing is downloaded.")


def _source(name: str, table: dict) -> None:
    if name not in table:
        raise ConfigError(f"unknown super-resolution data {name!r}; choose one of "
                          f"{', '.join(table)}", field="dataset")


def _test_images(test: str, root: str | Path,
                 photos: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The test set's images; `photos`: builtin_photos() if already loaded."""
    _source(test, SR_TEST_SETS)
    if test == "builtin":
        photos = photos or builtin_photos()
        return {n: photos[n] for n in BUILTIN_TEST}
    return folder_images(find_folder(root, SR_TEST_SETS[test], test))


def _source_images(source: SRSource, root: str | Path, limit: int
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The source's training images (the first `limit` if > 0) and its test images."""
    photos = None if source.train else builtin_photos()
    if photos is None:
        train = folder_images(find_folder(root, source.train, f"{source.name} training"), limit)
    else:
        train = {n: im for n, im in photos.items() if n not in BUILTIN_TEST}
        train = dict(list(train.items())[:limit]) if limit else train
    return train, _test_images(source.test, root, photos)


@dataclass
class SRTestSet:
    """Whole test images: names[i], lr[i] (1, 3, h, w) and hr[i] (1, 3, h·s, w·s), float32 in
    [0, 1]; HR cropped to multiples of the scale (`modcrop`) so that LR·s fits it exactly."""

    names: tuple[str, ...]
    lr: list[torch.Tensor]
    hr: list[torch.Tensor]
    scale: int


def sr_test_set(test: str, root: str | Path, scale: int, device: torch.device) -> SRTestSet:
    """The full images of the test set `test` (a key of SR_TEST_SETS) at ×`scale`."""
    _check_scale(scale)
    names, lrs, hrs = [], [], []
    for name, img in _test_images(test, root).items():
        hr = modcrop(img.unsqueeze(0).to(device).float() / 255.0, scale)
        names.append(name)
        hrs.append(hr)
        lrs.append(bicubic_down(hr, scale))
    return SRTestSet(tuple(names), lrs, hrs, scale)


# --- the patch streams ------------------------------------------------------------------------

def _check_scale(scale: int) -> None:
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {SCALES}, got {scale}", field="scale")


def centre_crops(images: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """The size×size centre crop of each (3, H, W) uint8 image -> (N, 3, size, size) uint8."""
    crops = []
    for name, img in images.items():
        h, w = img.shape[-2:]
        if min(h, w) < size:
            raise ConfigError(f"eval_crop must be <= {min(h, w)} (the image {name!r} is {h}×{w}), "
                              f"got {size}", field="eval_crop")
        top, left = (h - size) // 2, (w - size) // 2
        crops.append(img[:, top:top + size, left:left + size])
    return torch.stack(crops)


class PatchStream:
    """Seeded (lr, hr) batches of random patches from a set of HR images.

    `epoch(e)` yields `steps_per_epoch` batches (lr (B, 3, p, p), hr (B, 3, p·s, p·s)), float32
    in [0, 1] on `device`, drawn from a generator seeded by (seed, stream, e) as train/data.py
    `BatchStream` does, so a run resumed at an epoch boundary sees the same patches. `ordered`
    yields the fixed evaluation crops, never augmented. Images stay uint8 on the CPU; only the
    batches move to the device.
    """

    def __init__(self, images: list[torch.Tensor], eval_hr: torch.Tensor, scale: int,
                 lr_patch: int, batch_size: int, patches_per_epoch: int, seed: int,
                 stream: int, augment: bool, device: torch.device) -> None:
        self.images = images
        self.scale, self.lr_patch, self.batch_size = scale, lr_patch, batch_size
        self.patches_per_epoch, self.seed, self.stream = patches_per_epoch, seed, stream
        self.augment, self.device = augment, device
        self.eval_hr = eval_hr.to(device).float() / 255.0    # (M, 3, E, E)
        self.eval_lr = bicubic_down(self.eval_hr, scale)      # (M, 3, E/s, E/s)

    def __len__(self) -> int:
        return self.patches_per_epoch

    @property
    def steps_per_epoch(self) -> int:
        return self.patches_per_epoch // self.batch_size

    def _generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.stream * 7919 + epoch)

    def epoch(self, epoch: int, n_batches: int | None = None) -> Iterator[tuple[torch.Tensor,
                                                                               torch.Tensor]]:
        """Batches of epoch `epoch`; n_batches (default steps_per_epoch) may be any number."""
        g = self._generator(epoch)
        for _ in range(self.steps_per_epoch if n_batches is None else n_batches):
            yield self._batch(g)

    def _batch(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.lr_patch * self.scale
        which = torch.randint(len(self.images), (self.batch_size,), generator=g).tolist()
        turns = (torch.randint(8, (self.batch_size,), generator=g).tolist() if self.augment
                 else [0] * self.batch_size)
        crops = []
        for i, k in zip(which, turns):
            img = self.images[i]
            h, w = img.shape[-2:]
            top = int(torch.randint(h - p + 1, (1,), generator=g))
            left = int(torch.randint(w - p + 1, (1,), generator=g))
            crops.append(dihedral(img[:, top:top + p, left:left + p], k))
        hr = torch.stack(crops).to(self.device).float() / 255.0   # (B, 3, p, p)
        return bicubic_down(hr, self.scale), hr

    def ordered(self, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The fixed evaluation crops in order: (lr, hr) batches, the same every epoch."""
        for i in range(0, len(self.eval_hr), batch_size):
            yield self.eval_lr[i:i + batch_size], self.eval_hr[i:i + batch_size]


@dataclass
class SRData:
    """What the search loop reads, as train/data.py `SearchData`: `train` the w patches (and
    α's for single-level), `held_out` the α patches, whose `ordered()` are the fixed crops of
    the test images (the validation metrics); `shape` the LR patch (channels, size, 0)."""

    train: PatchStream
    held_out: PatchStream
    shape: DataShape
    scale: int
    train_names: tuple[str, ...]   # the w half's images
    alpha_names: tuple[str, ...]   # the α half's images
    eval_names: tuple[str, ...]    # the test images whose centre crops `held_out.ordered()` holds


def load_sr_data(source: str, root: str | Path, scale: int, lr_patch: int, batch_size: int,
                 patches_per_epoch: int, train_portion: float, seed: int, split_seed: int,
                 device: torch.device, augment: bool = True, eval_crop: int = 96,
                 limit: int = 0) -> SRData:
    """Load an SR source (a key of SR_SOURCES), split its training images by image into the w
    and α halves (seeded by `split_seed`, w gets floor(n · train_portion)), and build the two
    patch streams (seeded by `seed`). `limit` > 0 reads only the first `limit` training images."""
    _source(source, SR_SOURCES)
    _check_scale(scale)
    for field, value in (("lr_patch", lr_patch), ("batch_size", batch_size),
                         ("patches_per_epoch", patches_per_epoch)):
        if value < 1:
            raise ConfigError(f"{field} must be >= 1, got {value}", field=field)
    if patches_per_epoch < batch_size:
        raise ConfigError(f"patches_per_epoch must be >= batch_size ({batch_size}) so that an "
                          f"epoch has a step, got {patches_per_epoch}", field="patches_per_epoch")
    if eval_crop % scale:
        raise ConfigError(f"eval_crop must be a multiple of the scale {scale}, got {eval_crop}",
                          field="eval_crop")
    spec = SR_SOURCES[source]
    images, test = _source_images(spec, root, limit)
    names = list(images)
    n_w = math.floor(len(names) * train_portion)
    if not 1 <= n_w < len(names):
        raise ConfigError(f"train_portion must leave at least one of the {len(names)} training "
                          f"images in each half (the w half gets floor(n · train_portion)), got "
                          f"{train_portion:g}", field="train_portion")
    p = lr_patch * scale
    for name, img in images.items():
        if min(img.shape[-2:]) < p:
            h, w = img.shape[-2:]
            raise ConfigError(f"lr_patch × scale must be <= {min(h, w)} (the training image "
                              f"{name!r} is {h}×{w}), got {lr_patch} × {scale} = {p}",
                              field="lr_patch")
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(split_seed))
    w_names = tuple(names[i] for i in order[:n_w].tolist())
    a_names = tuple(names[i] for i in order[n_w:].tolist())
    eval_hr = centre_crops(test, eval_crop)
    w_crops = centre_crops({n: images[n] for n in w_names}, eval_crop)

    def stream(group: tuple[str, ...], crops: torch.Tensor, index: int) -> PatchStream:
        return PatchStream([images[n] for n in group], crops, scale, lr_patch, batch_size,
                           patches_per_epoch, seed, index, augment, device)

    return SRData(stream(w_names, w_crops, 0), stream(a_names, eval_hr, 1),
                  DataShape(3, lr_patch, 0), scale, w_names, a_names, tuple(test))
