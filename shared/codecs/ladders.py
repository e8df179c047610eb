"""Default quality ladders per codec: the settings a benchmark or sweep visits when none are given.

Two purposes, two ladders, kept side by side so a codec added to the registry gets both:
- PHOTO: full-size photos (Kodak 768×512) scored by PSNR; spans roughly 0.15–2 bpp.
- TASK: ~224-px images scored by a vision task; spans roughly 0.1–3 bpp so that curves of
  different codecs overlap in task accuracy.
"""

from __future__ import annotations

PHOTO: dict[str, list[int]] = {
    "bpg": [22, 26, 30, 34, 38, 42],
    "jpeg": [10, 20, 35, 50, 70, 85],
    "webp": [10, 25, 45, 65, 80, 90],
    "avif": [20, 35, 50, 60, 70, 80],
    "jxl": [20, 40, 60, 75, 85, 92],
    "vvc": [24, 28, 32, 36, 40, 44],
}

TASK: dict[str, list[int]] = {
    "bpg": [22, 27, 32, 37, 42, 46],
    "jpeg": [5, 10, 20, 35, 55, 80],
    "webp": [5, 15, 30, 50, 70, 90],
    "avif": [10, 25, 40, 55, 70, 85],
    "jxl": [15, 30, 50, 65, 80, 92],
    "vvc": [24, 29, 34, 39, 44, 49],
}


def quick(ladder: list[int]) -> list[int]:
    """Every other setting plus the last: four points, still enough for a BD-rate."""
    return [*ladder[::2], ladder[-1]]
