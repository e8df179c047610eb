"""Default quality ladders for task sweeps (chosen to span ~0.1–3 bpp on 224-px images so that
curves of different codecs overlap in task accuracy)."""

from __future__ import annotations

DEFAULT_QUALITIES: dict[str, list[int]] = {
    "bpg": [22, 27, 32, 37, 42, 46],
    "jpeg": [5, 10, 20, 35, 55, 80],
    "webp": [5, 15, 30, 50, 70, 90],
    "avif": [10, 25, 40, 55, 70, 85],
    "jxl": [15, 30, 50, 65, 80, 92],
    "vvc": [24, 29, 34, 39, 44, 49],
}
