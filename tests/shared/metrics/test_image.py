"""PSNR and MS-SSIM against cases with closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.metrics.image import (
    DATA_RANGE,
    K1,
    MS_SSIM_WEIGHTS,
    ImageMetricError,
    ms_ssim,
    ms_ssim_detail,
    ms_ssim_scales,
    psnr,
)


def test_psnr_known_values() -> None:
    a = np.full((16, 16, 3), 100, np.uint8)
    assert psnr(a, a) == math.inf
    # every sample off by 1 → MSE 1 → 20·log10(255)
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-12)
    # half the samples off by 2 → MSE 2
    b = a.copy()
    b[:8] += 2
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 2), abs=1e-12)


def test_ms_ssim_identical_is_one(kodak_image: np.ndarray) -> None:
    assert ms_ssim(kodak_image, kodak_image) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_constant_images_closed_form() -> None:
    # Flat images: σ = 0 so cs = 1 at every scale, and only the luminance term at scale 5 remains:
    # MS-SSIM = l^w5 with l = (2·m1·m2 + C1) / (m1² + m2² + C1).
    m1, m2 = 100.0, 140.0
    a = np.full((200, 180, 3), int(m1), np.uint8)
    b = np.full((200, 180, 3), int(m2), np.uint8)
    c1 = (K1 * DATA_RANGE) ** 2
    lum = (2 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1)
    res = ms_ssim_detail(a, b)
    assert res.scales == 5 and res.note == ""
    assert res.value == pytest.approx(lum ** MS_SSIM_WEIGHTS[4], rel=1e-12)


def test_ms_ssim_monotone_in_noise(kodak_image: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    img = kodak_image[:256, :256]
    vals = []
    for sigma in (2, 8, 25):
        noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
        vals.append(ms_ssim(img, noisy))
    assert 1 > vals[0] > vals[1] > vals[2] > 0


def test_ms_ssim_small_images_use_fewer_scales() -> None:
    assert ms_ssim_scales(176, 500) == 5
    assert ms_ssim_scales(175, 500) == 4
    assert ms_ssim_scales(11, 11) == 1
    assert ms_ssim_scales(10, 100) == 0
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    res = ms_ssim_detail(a, a)
    assert res.scales == 3 and "3 of 5 scales" in res.note
    assert sum(res.weights) == pytest.approx(1.0)
    assert res.value == pytest.approx(1.0)
    with pytest.raises(ImageMetricError, match="smaller than"):
        ms_ssim(a[:8], a[:8])


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ImageMetricError, match="differ in shape"):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ImageMetricError, match="uint8"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
