"""Full-reference image quality: PSNR and SSIM as the super-resolution literature reports them.

`psnr_y` / `ssim_y` convert RGB to the BT.601 luma Y in [16, 235] (MATLAB's `rgb2ycbcr`, which the SR
benchmarks use: Y = 16 + (65.481 R + 128.553 G + 24.966 B) with R, G, B in [0, 1]), crop `border`
pixels (4 for ×4, the usual convention) from every side, and compare with data range 255. SSIM is Wang
et al.'s (IEEE TIP 2004): 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, statistics over
the window's valid positions only, averaged — the same as `skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`.

Inputs are batches [N, H, W, C] (C = 3, or 1 for images already grey, used as Y directly), either
uint8 in 0..255 or floats in [-1, 1] (the library's range); results are per-image [N] (float64
NumPy). Also: `psnr` on all channels (e.g. cycle reconstructions), `bicubic_upscale` (the floor SR
methods are compared against) and `cycle_psnr`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from egan_jax.errors import ShapeError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_BT601 = np.array([65.481, 128.553, 24.966]) / 255.0


def to_unit_range(images) -> np.ndarray:
    """uint8 0..255 or float [-1, 1] images -> float64 in 0..255."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float64)
    if not np.issubdtype(images.dtype, np.floating):
        raise ShapeError(f"images must be uint8 or float in [-1, 1], got dtype {images.dtype}.")
    return (np.clip(images.astype(np.float64), -1.0, 1.0) + 1.0) * 127.5


def _check_pair(predictions, targets) -> tuple[np.ndarray, np.ndarray]:
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    if predictions.shape != targets.shape or predictions.ndim != 4:
        raise ShapeError(
            f"need two batches of equal shape [N, H, W, C]; got {predictions.shape} and "
            f"{targets.shape}."
        )
    if predictions.shape[-1] not in (1, 3):
        raise ShapeError(f"images need 1 or 3 channels, got {predictions.shape[-1]}.")
    return to_unit_range(predictions), to_unit_range(targets)


def rgb_to_y(images) -> np.ndarray:
    """[N, H, W, 3] (uint8 or [-1, 1]) -> BT.601 luma [N, H, W] in 16..235 (float64)."""
    values = to_unit_range(images)
    if values.shape[-1] != 3:
        raise ShapeError(f"rgb_to_y needs 3 channels, got {values.shape[-1]}.")
    return 16.0 + values @ _BT601


def _luma(values: np.ndarray, border: int) -> np.ndarray:
    """float64 0..255 [N, H, W, C] -> Y [N, H − 2b, W − 2b]."""
    y = 16.0 + values @ _BT601 if values.shape[-1] == 3 else values[..., 0]
    if border:
        if 2 * border >= min(y.shape[1:]):
            raise ShapeError(f"border={border} leaves nothing of {y.shape[1:]} images.")
        y = y[:, border:-border, border:-border]
    return y


def _psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
    mse = np.mean(np.square(a - b).reshape(a.shape[0], -1), axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)  # inf for identical images


def psnr_y(predictions, targets, *, border: int = 4) -> np.ndarray:
    """PSNR (dB) on the Y channel with `border` px cropped, data range 255: [N] (inf if equal)."""
    p, t = _check_pair(predictions, targets)
    return _psnr(_luma(p, border), _luma(t, border), 255.0)


def psnr(predictions, targets) -> np.ndarray:
    """PSNR (dB) over all channels and pixels, data range 255: [N]."""
    p, t = _check_pair(predictions, targets)
    return _psnr(p, t, 255.0)


def _gaussian_window() -> np.ndarray:
    radius = SSIM_WINDOW // 2
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def _filter_valid(images: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of [N, H, W] with the 1-D window along H and W."""
    k = len(taps)
    h = images.shape[1] - k + 1
    w = images.shape[2] - k + 1
    rows = sum(taps[i] * images[:, i : i + h, :] for i in range(k))
    return sum(taps[j] * rows[:, :, j : j + w] for j in range(k))


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> np.ndarray:
    """Mean SSIM of grey images [N, H, W] (float, 0..data_range), Gaussian window: [N]."""
    if a.shape[1] < SSIM_WINDOW or a.shape[2] < SSIM_WINDOW:
        raise ShapeError(f"SSIM needs images of at least {SSIM_WINDOW} px, got {a.shape[1:]}.")
    taps = _gaussian_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, taps), _filter_valid(b, taps)
    var_a = _filter_valid(a * a, taps) - mu_a**2
    var_b = _filter_valid(b * b, taps) - mu_b**2
    cov = _filter_valid(a * b, taps) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return np.mean((numerator / denominator).reshape(a.shape[0], -1), axis=1)


def ssim_y(predictions, targets, *, border: int = 4) -> np.ndarray:
    """SSIM on the Y channel with `border` px cropped (Wang et al. 2004 settings): [N]."""
    p, t = _check_pair(predictions, targets)
    return ssim(_luma(p, border), _luma(t, border))


def bicubic_upscale(images, scale: int) -> np.ndarray:
    """PIL BICUBIC ×scale of [N, h, w, C]; uint8 in -> uint8 out, float [-1, 1] in -> float32 out."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ShapeError(f"bicubic_upscale needs [N, h, w, 1 or 3], got {images.shape}.")
    as_uint8 = images.dtype == np.uint8
    pixels = images if as_uint8 else np.clip(np.rint(to_unit_range(images)), 0, 255)
    pixels = pixels.astype(np.uint8)
    n, h, w, c = pixels.shape
    out = np.empty((n, h * scale, w * scale, c), np.uint8)
    for i in range(n):
        pil = Image.fromarray(pixels[i, ..., 0] if c == 1 else pixels[i], "L" if c == 1 else "RGB")
        big = pil.resize((w * scale, h * scale), Image.Resampling.BICUBIC)
        out[i] = np.asarray(big).reshape(h * scale, w * scale, c)
    if as_uint8:
        return out
    return out.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def cycle_psnr(originals, reconstructions) -> np.ndarray:
    """PSNR (dB, all channels) of x against F(G(x)) for a CycleGAN direction: [N]."""
    return psnr(reconstructions, originals)


def sr_scores(predictions, targets, *, border: int = 4) -> dict[str, float]:
    """Mean Y-channel PSNR and SSIM of a batch: {"psnr_y": dB, "ssim_y": ...}."""
    return {
        "psnr_y": float(np.mean(psnr_y(predictions, targets, border=border))),
        "ssim_y": float(np.mean(ssim_y(predictions, targets, border=border))),
    }
