"""PSNR and SSIM on the Y channel, the way single-image super-resolution papers report them.

Both follow the convention of EDSR (Lim et al. 2017; sanghyun-son/EDSR-PyTorch
src/utility.py `calc_psnr`) and BasicSR (xinntao/BasicSR basicsr/metrics/psnr_ssim.py
`calculate_psnr`, `calculate_ssim`), which the trilevel SR search code reports with
(hanyao8/DA-NAS-SISR util_gan/psnr.py `compute_psnr`):
- RGB in [0, 1] is converted to the luma Y of ITU-R BT.601 as MATLAB's `rgb2ycbcr` computes it,
  Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, so Y lies in [16/255, 235/255];
- `border` pixels (the scale factor, by convention) are cropped from every side first, since
  the upsampler cannot know what lies beyond the image edge;
- PSNR = 10 log10(1 / MSE) with data range 1 (the same number as 255 on [0, 255] values);
- SSIM (Wang et al. 2004) with an 11×11 Gaussian window of σ 1.5, K1 = 0.01, K2 = 0.03, the
  statistics taken over the window positions that fit inside the cropped image ("valid"),
  then averaged. That is BasicSR's `_ssim` and scikit-image's `structural_similarity` with
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.

Inputs are batches (N, 3, H, W) of RGB in [0, 1]; values outside are clamped first, as saving
the image would. Each metric returns one value per image, shape (N,); `.mean()` is the set's
mean as papers average it (per image, then over images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# MATLAB rgb2ycbcr, Y row, for inputs in [0, 1] and an output in [0, 255].
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
PSNR_MAX_DB = 100.0  # the value for identical images (MSE clamped to 1e-10) instead of inf


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """x: (N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) BT.601 luma in [16/255, 235/255]."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_y expects (N, 3, H, W) RGB, got shape {tuple(x.shape)}")
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * w).sum(dim=1, keepdim=True) + _Y_OFFSET) / 255.0


def _y_pair(sr: torch.Tensor, hr: torch.Tensor, border: int) -> tuple[torch.Tensor,
                                                                      torch.Tensor]:
    """Both batches clamped, converted to Y and cropped by `border`: (N, 1, H-2b, W-2b)."""
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and "
                         f"{tuple(hr.shape)}")
    h, w = hr.shape[-2:]
    if border < 0 or 2 * border >= min(h, w):
        raise ValueError(f"border must be in [0, {(min(h, w) - 1) // 2}] for {h}×{w} images, "
                         f"got {border}")
    ys = [rgb_to_y(t.clamp(0.0, 1.0)) for t in (sr, hr)]
    if border:
        ys = [y[..., border:h - border, border:w - border] for y in ys]
    return ys[0], ys[1]


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """Per-image PSNR in dB on Y with `border` pixels cropped; (N,). Identical images give
    PSNR_MAX_DB rather than inf, so that a mean over images stays finite."""
    y_sr, y_hr = _y_pair(sr, hr, border)
    mse = (y_sr - y_hr).pow(2).mean(dim=(1, 2, 3)).clamp_min(10 ** (-PSNR_MAX_DB / 10))
    return -10.0 * torch.log10(mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 1, 11, 11) normalised Gaussian, σ 1.5 (MATLAB fspecial('gaussian', 11, 1.5))."""
    r = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-r ** 2 / (2 * SSIM_SIGMA ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, SSIM_WINDOW, SSIM_WINDOW)


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """Per-image SSIM on Y with `border` pixels cropped; (N,). The cropped image must be at
    least 11 pixels on each side (one window)."""
    y_sr, y_hr = _y_pair(sr, hr, border)
    if min(y_hr.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim_y needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW} after "
                         f"cropping {border} border pixels, got {tuple(y_hr.shape[-2:])}")
    win = _gaussian_window(y_hr.dtype, y_hr.device)
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2  # data range 1

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win)  # "valid": only window positions inside the image

    mu_x, mu_y = blur(y_sr), blur(y_hr)
    var_x = blur(y_sr * y_sr) - mu_x ** 2
    var_y = blur(y_hr * y_hr) - mu_y ** 2
    cov = blur(y_sr * y_hr) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))
