"""Rate: bits per pixel, defined once for every table, curve and bootstrap.

bpp of a set of images = Σ bits / Σ original pixels (not the mean of per-image bpp), so a large
image weighs by its pixels, as the bits on a link do. With weights (a bootstrap resample's
multiplicities) both sums are weighted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bits_per_pixel(bits: float | Sequence[float] | np.ndarray, pixels: float | Sequence[float] | np.ndarray,
                   weights: np.ndarray | None = None) -> float:
    """Σ w·bits / Σ w·pixels (w = 1 without ``weights``); one image: its bits over its pixels."""
    b = np.asarray(bits, dtype=np.float64).reshape(-1)
    p = np.asarray(pixels, dtype=np.float64).reshape(-1)
    if b.shape != p.shape:
        raise ValueError(f"{b.size} bit counts for {p.size} images")
    w = np.ones_like(b) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    total = float(p @ w)
    if total <= 0:
        raise ValueError("bits per pixel of no pixels")
    return float(b @ w) / total
