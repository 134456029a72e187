"""Super-resolution data (train/srdata.py): the built-in photos, bicubic resampling checked
against PIL, the patch streams (shapes, ranges, seeds, LR/HR alignment under flips and
rotations found by brute force), the by-image splits, and local folders with their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from darts_engine.config import ConfigError
from darts_engine.train import srdata
from darts_engine.train.data import DataError
from darts_engine.train.srdata import (
    BUILTIN_PHOTOS,
    BUILTIN_TEST,
    PatchStream,
    bicubic_down,
    bicubic_up,
    dihedral,
    load_sr_data,
    sr_test_set,
)
from darts_engine.train.srmetrics import psnr_y

CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def photos():
    """Decode the built-in photos once for the module (each load_sr_data would again)."""
    loaded = srdata.builtin_photos()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(srdata, "builtin_photos", lambda: loaded)
        yield loaded


def sr(scale=2, lr_patch=12, batch_size=8, seed=0, split_seed=0, **kw):
    return load_sr_data("builtin", "unused", scale, lr_patch, batch_size, 32, 0.5, seed,
                        split_seed, CPU, **kw)


def write_png(path, rng, h, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


# --- the built-in photos ------------------------------------------------------------------------

def test_builtin_photos_are_rgb_uint8_with_licences(photos):
    assert list(photos) == [p.name for p in BUILTIN_PHOTOS]
    assert len(photos) == 15 and set(BUILTIN_TEST) <= set(photos)
    for p in BUILTIN_PHOTOS:
        img = photos[p.name]
        assert img.dtype == torch.uint8 and img.shape[0] == 3 and min(img.shape[1:]) >= 256
        assert p.licence
    gray = photos["camera"]  # a gray photo, repeated into the three channels
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert not torch.equal(photos["coffee"][0], photos["coffee"][2])


# --- resampling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_matches_pil(scale):
    """PIL's float bicubic (Keys a = -0.5, widened by the scale when downscaling) is an
    independent implementation of MATLAB-style imresize."""
    rng = np.random.default_rng(scale)
    a = rng.random((12 * scale + 1, 10 * scale + 2)).astype(np.float32) * 0.8 + 0.1
    t = torch.tensor(a)[None, None]
    lr = bicubic_down(t, scale)[0, 0].numpy()
    h, w = (a.shape[0] // scale) * scale, (a.shape[1] // scale) * scale  # modcrop first
    ref = Image.fromarray(a[:h, :w], mode="F").resize((w // scale, h // scale), Image.BICUBIC)
    np.testing.assert_allclose(lr, np.clip(np.asarray(ref), 0, 1), atol=1e-5)
    small = np.asarray(ref)
    up = bicubic_up(torch.tensor(small)[None, None], scale)[0, 0].numpy()
    ref_up = Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)
    np.testing.assert_allclose(up, np.clip(np.asarray(ref_up), 0, 1), atol=1e-5)


def test_constant_image_stays_constant():
    x = torch.full((2, 3, 30, 42), 0.37)
    for scale in (2, 3, 4):
        lr = bicubic_down(x, scale)
        assert lr.shape == (2, 3, 30 // scale, 42 // scale)
        assert torch.allclose(lr, torch.full_like(lr, 0.37), atol=1e-6)
        assert torch.allclose(bicubic_up(lr, scale), torch.full((2, 3, lr.shape[2] * scale,
                                                                 lr.shape[3] * scale), 0.37),
                              atol=1e-6)


def test_smooth_image_survives_down_and_up_texture_does_not(photos):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    smooth = torch.stack([0.5 + 0.3 * torch.sin(2 * torch.pi * xx),
                          0.5 + 0.3 * torch.cos(2 * torch.pi * yy),
                          0.2 + 0.6 * xx * yy])[None]                      # (1, 3, 96, 96)
    texture = photos["gravel"][None, :, :96, :96].float() / 255.0
    p_smooth = float(psnr_y(bicubic_up(bicubic_down(smooth, 2), 2), smooth, 2))
    p_texture = float(psnr_y(bicubic_up(bicubic_down(texture, 2), 2), texture, 2))
    assert p_smooth > 35.0
    assert p_texture < p_smooth - 10.0


@pytest.mark.parametrize("k", range(8))
def test_downscaling_commutes_with_flips_and_rotations(k):
    x = torch.rand(2, 3, 24, 36)
    assert torch.allclose(bicubic_down(dihedral(x, k), 3), dihedral(bicubic_down(x, 3), k),
                          atol=1e-6)


def test_dihedral_gives_the_eight_symmetries():
    x = torch.arange(6.0).view(2, 3)
    outs = [dihedral(x, k) for k in range(8)]
    assert torch.equal(outs[0], x) and torch.equal(outs[4], x.flip(-1))
    assert torch.equal(outs[2], x.flip(0).flip(1))
    assert len({tuple(o.flatten().tolist()) + tuple(o.shape) for o in outs}) == 8


# --- the patch streams --------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_stream_shapes_and_ranges(scale):
    data = sr(scale=scale, lr_patch=12, batch_size=8)
    assert data.train.steps_per_epoch == 4 and data.shape.image_size == 12
    batches = list(data.train.epoch(0))
    assert len(batches) == 4
    for lr, hr in batches + list(data.held_out.epoch(0, n_batches=2)):
        assert lr.shape == (8, 3, 12, 12) and hr.shape == (8, 3, 12 * scale, 12 * scale)
        assert lr.dtype == hr.dtype == torch.float32 and lr.device == CPU
        assert 0 <= float(lr.min()) and float(lr.max()) <= 1
        assert 0 <= float(hr.min()) and float(hr.max()) <= 1
        assert torch.equal(lr, bicubic_down(hr, scale))  # LR made from the (augmented) HR
    (lr, hr), = data.held_out.ordered()
    assert hr.shape == (5, 3, 96, 96) and lr.shape == (5, 3, 96 // scale, 96 // scale)


def test_same_seed_same_batches_other_seed_or_epoch_others():
    a, b, c = sr(seed=1), sr(seed=1), sr(seed=2)
    first = [hr for _, hr in a.train.epoch(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, [hr for _, hr in b.train.epoch(3)]))
    assert not torch.equal(first[0], next(c.train.epoch(3))[1])
    assert not torch.equal(first[0], next(a.train.epoch(4))[1])
    assert not torch.equal(first[0], next(a.held_out.epoch(3))[1])  # the other stream


def test_evaluation_crops_are_fixed_and_are_the_test_images_centres(photos):
    data = sr()
    (lr1, hr1), (lr2, hr2) = next(data.held_out.ordered()), next(data.held_out.ordered(2))
    assert torch.equal(hr1[:2], hr2) and torch.equal(lr1[:2], lr2)
    assert data.eval_names == BUILTIN_TEST
    for i, name in enumerate(BUILTIN_TEST):
        img = photos[name]
        top, left = (img.shape[1] - 96) // 2, (img.shape[2] - 96) // 2
        assert torch.equal(hr1[i], img[:, top:top + 96, left:left + 96].float() / 255.0)


def test_train_halves_and_test_images_are_disjoint(photos):
    data = sr(split_seed=5)
    w, a = set(data.train_names), set(data.alpha_names)
    assert not w & a and not (w | a) & set(BUILTIN_TEST)
    assert w | a == set(photos) - set(BUILTIN_TEST) and len(w) == 5
    assert all(x is not photos[n] for x in data.train.images for n in BUILTIN_TEST)
    assert len({sr(split_seed=s).train_names for s in range(4)}) > 1  # the split is seeded
    assert sr(split_seed=5).train_names == data.train_names
    few = sr(limit=4)
    assert len(few.train_names + few.alpha_names) == 4 and few.eval_names == BUILTIN_TEST


def find_patch(img: torch.Tensor, patch: torch.Tensor) -> set[int]:
    """Brute force: every symmetry k for which `patch` is dihedral(crop of img, k)."""
    p = patch.shape[-1]
    found = set()
    for k in range(8):
        for top in range(img.shape[1] - p + 1):
            for left in range(img.shape[2] - p + 1):
                if torch.equal(dihedral(img[:, top:top + p, left:left + p], k), patch):
                    found.add(k)
    return found


def test_patches_are_flipped_and_rotated_crops_with_aligned_lr():
    img = torch.randint(0, 256, (3, 10, 13), generator=torch.Generator().manual_seed(0),
                        dtype=torch.uint8)
    eval_hr = img[None, :, :8, :8]
    stream = PatchStream([img], eval_hr, 2, 3, 16, 64, seed=0, stream=0, augment=True,
                         device=CPU)
    seen = set()
    for lr, hr in stream.epoch(0):
        for i in range(len(hr)):
            ks = find_patch(img, (hr[i] * 255).round().to(torch.uint8))
            assert ks, "an HR patch is not a crop of the image under any flip/rotation"
            seen |= ks
        assert torch.equal(lr, bicubic_down(hr, 2))
    assert len(seen) == 8  # all eight symmetries are drawn
    plain = PatchStream([img], eval_hr, 2, 3, 16, 16, 0, 0, augment=False, device=CPU)
    _, hr = next(plain.epoch(0))
    for i in range(len(hr)):  # without augment the crop is always upright
        assert 0 in find_patch(img, (hr[i] * 255).round().to(torch.uint8))


def test_builtin_test_set_full_images():
    test = sr_test_set("builtin", "unused", 3, CPU)
    assert test.names == BUILTIN_TEST and test.scale == 3
    for lr, hr in zip(test.lr, test.hr):
        assert hr.shape[-2] % 3 == 0 and hr.shape[-1] % 3 == 0
        assert lr.shape[-2:] == (hr.shape[-2] // 3, hr.shape[-1] // 3)
        assert hr.dtype == torch.float32 and 0 <= float(hr.min()) and float(hr.max()) <= 1


# --- bad arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    ({"scale": 5}, "scale"),
    ({"lr_patch": 100, "scale": 4}, "lr_patch"),   # 400 px > the smallest training image
    ({"lr_patch": 0}, "lr_patch"),
    ({"batch_size": 64}, "patches_per_epoch"),     # 32 patches per epoch < one batch
    ({"scale": 3, "eval_crop": 100}, "eval_crop"),
    ({"eval_crop": 400}, "eval_crop"),             # larger than chelsea (300 high)
])
def test_bad_arguments_name_their_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        sr(**kwargs)
    assert e.value.field == field and field in str(e.value)


def test_train_portion_must_leave_both_halves():
    with pytest.raises(ConfigError, match="train_portion") as e:
        load_sr_data("builtin", "unused", 2, 12, 8, 32, 0.05, 0, 0, CPU)
    assert e.value.field == "train_portion"
    with pytest.raises(ConfigError, match="choose one of builtin, div2k"):
        load_sr_data("nope", "unused", 2, 12, 8, 32, 0.5, 0, 0, CPU)


# --- local folders ------------------------------------------------------------------------------

def test_missing_div2k_folder_names_where_it_looked(tmp_path):
    with pytest.raises(DataError) as e:
        load_sr_data("div2k", tmp_path, 2, 12, 8, 32, 0.5, 0, 0, CPU)
    msg = str(e.value)
    assert str(tmp_path / "DIV2K" / "DIV2K_train_HR") in msg and "nothing is downloaded" in msg
    (tmp_path / "DIV2K_train_HR").mkdir()  # there, but empty: still not found
    with pytest.raises(DataError, match="DIV2K_train_HR"):
        load_sr_data("div2k", tmp_path, 2, 12, 8, 32, 0.5, 0, 0, CPU)
    with pytest.raises(DataError, match="holds no images"):
        srdata.folder_images(tmp_path / "DIV2K_train_HR")
    with pytest.raises(DataError, match="does not exist"):
        srdata.folder_images(tmp_path / "elsewhere")


def test_div2k_and_set5_from_local_folders(tmp_path):
    rng = np.random.default_rng(0)
    train = {f"{i:04d}": write_png(tmp_path / "DIV2K" / "DIV2K_train_HR" / f"{i:04d}.png", rng,
                                   100 + i, 120) for i in range(1, 5)}
    # BasicSR's layout for the test set, with an LR folder beside it that must not be read
    tests = {n: write_png(tmp_path / "Set5" / "GTmod12" / f"{n}.png", rng, 97, 98)
             for n in ("baby", "bird")}
    write_png(tmp_path / "Set5" / "LRbicx2" / "baby.png", rng, 48, 49)
    (tmp_path / "Set5" / "GTmod12" / "notes.txt").write_text("not an image")
    data = load_sr_data("div2k", tmp_path, 2, 12, 4, 16, 0.5, 0, 0, CPU)
    assert sorted(data.train_names + data.alpha_names) == sorted(train)
    assert data.eval_names == ("baby", "bird")
    (_, hr), = data.held_out.ordered()
    assert hr.shape == (2, 3, 96, 96)
    assert torch.equal(hr[0], torch.tensor(tests["baby"][0:96, 1:97]).permute(2, 0, 1) / 255.0)
    test = sr_test_set("set5", tmp_path, 4, CPU)
    assert test.names == ("baby", "bird") and test.hr[0].shape == (1, 3, 96, 96)
    with pytest.raises(DataError) as e:
        sr_test_set("set14", tmp_path, 2, CPU)
    assert str(tmp_path / "Set14" / "HR") in str(e.value)
    assert len(list(load_sr_data("div2k", tmp_path, 2, 12, 4, 16, 0.5, 0, 0, CPU,
                                 limit=2).train_names)) == 1
