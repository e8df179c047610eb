"""Pixel fidelity metrics on RGB uint8 images: PSNR and MS-SSIM (Wang, Simoncelli, Bovik 2003).

PSNR of a set of images is the mean of the per-image PSNRs (dB, RGB, peak 255), with an image
identical to its original counted as :data:`PSNR_IDENTICAL_DB` = 100 dB instead of infinity
(:func:`capped_psnr`, :func:`mean_psnr`): the codec benchmark, the sweep and the reports all use it.

MS-SSIM is implemented here with numpy/scipy so that the codec benchmark, the sweep and the
services share one definition:

- Gaussian window, 11 taps, σ = 1.5, normalised to sum 1, applied separably in "valid" mode
  (no padding: only windows that lie fully inside the image count);
- constants K1 = 0.01, K2 = 0.03, dynamic range L = 255 (inputs are uint8);
- 5 scales with the paper's weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); between scales a
  2×2 average then subsampling by 2 (odd trailing rows/columns dropped);
- contrast·structure at every scale, luminance only at the coarsest one;
- each RGB channel is scored separately and the three values averaged (as TF's
  ``ssim_multiscale`` and ``pytorch_msssim`` do for colour images);
- negative cs / luminance terms (possible for anti-correlated content) are clamped to 0 before the
  fractional powers, otherwise the product is undefined.

An image needs ``11 · 2^(M−1)`` pixels on its shorter side for M scales (176 for 5). Smaller images
use the largest M that fits, with the first M weights renormalised to sum to 1 (the standard 5
weights are used as published); the result (:class:`MSSSIMResult`) records the number of scales
and says so in ``note``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d

#: Wang et al. 2003, Table/Eq. (7): exponents β_j = γ_j, α_M for scales 1..5.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0


class ImageMetricError(ValueError):
    """The two images cannot be compared (shape, dtype, or too small)."""


@dataclass(frozen=True)
class MSSSIMResult:
    value: float
    scales: int
    weights: tuple[float, ...]
    note: str  # empty when the standard 5 scales were used


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    for name, im in (("a", a), ("b", b)):
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8:
            raise ImageMetricError(f"image {name} must be a uint8 numpy array, got {getattr(im, 'dtype', im)}")
        if im.ndim != 3 or im.shape[2] != 3:
            raise ImageMetricError(f"image {name} must be H×W×3 RGB, got shape {im.shape}")
    if a.shape != b.shape:
        raise ImageMetricError(f"images differ in shape: {a.shape} vs {b.shape}")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels of two uint8 RGB images."""
    _check_pair(a, b)
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over the RGB channels of two uint8 images (peak 255); ``inf`` when identical."""
    m = mse(a, b)
    if m == 0.0:
        return float("inf")
    return float(10.0 * np.log10(DATA_RANGE * DATA_RANGE / m))


#: PSNR (dB) given to an image identical to its original, so that a mean stays finite.
PSNR_IDENTICAL_DB = 100.0


def capped_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`psnr`, at most :data:`PSNR_IDENTICAL_DB` (identical images)."""
    return min(psnr(a, b), PSNR_IDENTICAL_DB)


def mean_psnr(values: Iterable[float | None]) -> float:
    """The PSNR of a set of images: the mean of per-image PSNRs, each capped at
    :data:`PSNR_IDENTICAL_DB` (``None`` or ``inf`` = identical, as older results stored it)."""
    v = [PSNR_IDENTICAL_DB if x is None or x > PSNR_IDENTICAL_DB else float(x) for x in values]
    if not v:
        raise ImageMetricError("mean PSNR of no images")
    return float(np.mean(v))


def _gaussian_window() -> np.ndarray:
    x = np.arange(WINDOW_SIZE, dtype=np.float64) - (WINDOW_SIZE - 1) / 2
    g = np.exp(-(x * x) / (2 * WINDOW_SIGMA * WINDOW_SIGMA))
    return g / g.sum()


_WINDOW = _gaussian_window()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over axes 0 and 1 (H, W) of an H×W×C array, "valid" region only."""
    h = WINDOW_SIZE // 2
    y = correlate1d(x, _WINDOW, axis=0, mode="reflect")
    y = correlate1d(y, _WINDOW, axis=1, mode="reflect")
    # Cropping the border removes every output whose window touched the padding: exactly "valid".
    return y[h:-h, h:-h]


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean luminance term and mean contrast·structure term (each shape (C,))."""
    c1 = (K1 * DATA_RANGE) ** 2
    c2 = (K2 * DATA_RANGE) ** 2
    mu_x = _filter_valid(x)
    mu_y = _filter_valid(y)
    sxx = _filter_valid(x * x) - mu_x * mu_x
    syy = _filter_valid(y * y) - mu_y * mu_y
    sxy = _filter_valid(x * y) - mu_x * mu_y
    lum = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return lum.mean(axis=(0, 1)), cs.mean(axis=(0, 1))


def _downsample(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales (≤ 5) fit an image of this size; 0 when not even one does."""
    side = min(height, width)
    scales = 0
    while scales < len(MS_SSIM_WEIGHTS) and side >= WINDOW_SIZE:
        scales += 1
        side //= 2
    return scales


def ms_ssim_detail(a: np.ndarray, b: np.ndarray) -> MSSSIMResult:
    """MS-SSIM with the number of scales used and a note when fewer than 5 fitted."""
    _check_pair(a, b)
    h, w = a.shape[:2]
    scales = ms_ssim_scales(h, w)
    if scales == 0:
        raise ImageMetricError(
            f"image {w}x{h} is smaller than the {WINDOW_SIZE}-tap MS-SSIM window on its shorter side"
        )
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    if scales < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    per_channel = np.ones(3, dtype=np.float64)
    for j in range(scales):
        lum, cs = _ssim_terms(x, y)
        per_channel *= np.maximum(cs, 0.0) ** weights[j]
        if j == scales - 1:
            per_channel *= np.maximum(lum, 0.0) ** weights[j]
        else:
            x, y = _downsample(x), _downsample(y)
    note = ""
    if scales < len(MS_SSIM_WEIGHTS):
        note = (
            f"image {w}x{h} fits only {scales} of {len(MS_SSIM_WEIGHTS)} scales "
            f"(needs {WINDOW_SIZE * 2 ** (len(MS_SSIM_WEIGHTS) - 1)} px on the shorter side); "
            "weights renormalised"
        )
    return MSSSIMResult(float(per_channel.mean()), scales, tuple(float(v) for v in weights), note)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM in [0, 1] of two uint8 RGB images (1 = identical); see the module docstring."""
    return ms_ssim_detail(a, b).value
