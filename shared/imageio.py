"""Reading and writing ordinary image files as RGB uint8 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: File suffixes read as images everywhere (folders, datasets, benchmarks).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def rgb_problem(image: object) -> str | None:
    """What keeps ``image`` from being an RGB frame (H×W×3 uint8, non-empty), or ``None``. The
    one definition codecs and task models check their inputs against, each raising its own error."""
    if not isinstance(image, np.ndarray):
        return f"expected an H×W×3 uint8 RGB array, got {type(image).__name__}"
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f"expected an H×W×3 uint8 RGB array, got {image.dtype} array of shape {image.shape}"
    if image.shape[0] < 1 or image.shape[1] < 1:
        return f"image is empty: {image.shape[1]}x{image.shape[0]}"
    return None


class ImageReadError(OSError):
    """An input image file is missing or unreadable."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to a writable H×W×3 uint8 RGB array (greyscale, palette and alpha
    are converted); :class:`ImageReadError` when it is missing or not an image."""
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {p}: {exc}") from exc


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG")


def list_images(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise ImageReadError(f"image folder not found: {root}")
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
