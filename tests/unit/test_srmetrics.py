"""PSNR / SSIM on Y (train/srmetrics.py) against scikit-image's implementations, computed on
numpy arrays independently of our torch code: skimage.color.rgb2ycbcr for the luma,
skimage.metrics for the two metrics, on random and on natural images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from darts_engine.train.srmetrics import PSNR_MAX_DB, psnr_y, rgb_to_y, ssim_y


def to_batch(*images: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(H, W, 3) float arrays in [0, 1] -> (N, 3, H, W)."""
    return torch.tensor(np.stack(images), dtype=dtype).permute(0, 3, 1, 2)


def reference(sr: np.ndarray, hr: np.ndarray, border: int) -> tuple[float, float]:
    """scikit-image's PSNR and SSIM on the Y channel of two (H, W, 3) images in [0, 1]."""
    y_sr, y_hr = (rgb2ycbcr(im)[..., 0] / 255.0 for im in (sr, hr))
    if border:
        y_sr, y_hr = (y[border:-border, border:-border] for y in (y_sr, y_hr))
    psnr = peak_signal_noise_ratio(y_hr, y_sr, data_range=1.0)
    ssim = structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0)
    return psnr, ssim


def random_pairs(n: int, h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.random((n, h, w, 3))
    sr = np.clip(hr + rng.normal(0, 0.1, hr.shape), 0, 1)
    return sr, hr


def natural_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Crops of two scikit-image photos and a degraded copy of each (2×2 box blur + noise)."""
    from skimage import data

    rng = np.random.default_rng(3)
    hrs = [data.astronaut()[100:196, 150:270] / 255.0, data.coffee()[150:246, 200:320] / 255.0]
    srs = []
    for hr in hrs:
        blurred = (hr + np.roll(hr, 1, 0) + np.roll(hr, 1, 1) + np.roll(hr, (1, 1), (0, 1))) / 4
        srs.append(np.clip(blurred + rng.normal(0, 0.01, hr.shape), 0, 1))
    return np.stack(srs), np.stack(hrs)


def test_rgb_to_y_is_matlab_rgb2ycbcr():
    rng = np.random.default_rng(0)
    img = rng.random((17, 23, 3))
    ours = rgb_to_y(to_batch(img))[0, 0].numpy()
    np.testing.assert_allclose(ours * 255.0, rgb2ycbcr(img)[..., 0], atol=1e-9)
    # the hand-made corners of the range: black -> 16, white -> 235 (on [0, 255])
    corners = rgb_to_y(to_batch(np.zeros((1, 1, 3)), np.ones((1, 1, 3))))[:, 0, 0, 0] * 255
    np.testing.assert_allclose(corners.numpy(), [16.0, 235.0], atol=1e-9)


@pytest.mark.parametrize("border", [0, 2, 4])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_agrees_with_skimage_on_random_images(border, dtype):
    sr, hr = random_pairs(3, 40, 52, seed=border)
    psnr = psnr_y(to_batch(*sr, dtype=dtype), to_batch(*hr, dtype=dtype), border)
    ssim = ssim_y(to_batch(*sr, dtype=dtype), to_batch(*hr, dtype=dtype), border)
    assert psnr.shape == ssim.shape == (3,)
    for i in range(3):
        ref_psnr, ref_ssim = reference(sr[i], hr[i], border)
        assert abs(float(psnr[i]) - ref_psnr) < 1e-4
        assert abs(float(ssim[i]) - ref_ssim) < 1e-4


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_agrees_with_skimage_on_natural_images(dtype):
    sr, hr = natural_pairs()
    psnr = psnr_y(to_batch(*sr, dtype=dtype), to_batch(*hr, dtype=dtype), 2)
    ssim = ssim_y(to_batch(*sr, dtype=dtype), to_batch(*hr, dtype=dtype), 2)
    refs = [reference(sr[i], hr[i], 2) for i in range(2)]
    np.testing.assert_allclose(psnr.numpy(), [r[0] for r in refs], atol=1e-4)
    np.testing.assert_allclose(ssim.numpy(), [r[1] for r in refs], atol=1e-4)
    # a blurred photo keeps its structure: high but imperfect scores
    assert (psnr > 25).all() and (ssim > 0.7).all() and (ssim < 1).all()


def test_border_crop_ignores_noise_in_the_border_only():
    rng = np.random.default_rng(1)
    hr = rng.random((1, 32, 32, 3))
    sr = hr.copy()
    ring = np.ones((32, 32), bool)
    ring[3:-3, 3:-3] = False
    sr[0][ring] = rng.random((int(ring.sum()), 3))
    a, b = to_batch(*sr), to_batch(*hr)
    assert float(psnr_y(a, b, 3)) == pytest.approx(PSNR_MAX_DB)
    assert float(ssim_y(a, b, 3)) == pytest.approx(1.0, abs=1e-12)
    # one pixel less of crop and the noise counts, exactly as scikit-image sees it
    ref_psnr, ref_ssim = reference(sr[0], hr[0], 2)
    assert float(psnr_y(a, b, 2)) == pytest.approx(ref_psnr, abs=1e-4) and ref_psnr < 40
    assert float(ssim_y(a, b, 2)) == pytest.approx(ref_ssim, abs=1e-4) and ref_ssim < 1


def test_values_outside_the_range_are_clamped():
    sr, hr = random_pairs(1, 24, 24, seed=5)
    over = to_batch(*sr) * 2 - 0.5  # stretched past [0, 1] on both sides
    ref = psnr_y(over.clamp(0, 1), to_batch(*hr), 0)
    assert torch.equal(psnr_y(over, to_batch(*hr), 0), ref)


def test_bad_shapes_and_borders_are_named():
    x = torch.rand(2, 3, 20, 20)
    with pytest.raises(ValueError, match="same shape"):
        psnr_y(x, x[:1], 0)
    with pytest.raises(ValueError, match="border"):
        psnr_y(x, x, 10)
    with pytest.raises(ValueError, match="at least 11"):
        ssim_y(x, x, 5)
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_y(torch.rand(2, 1, 8, 8))
