"""Reading and writing ordinary image files as RGB uint8 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class ImageReadError(OSError):
    """An input image file is missing or unreadable."""


def read_rgb(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {p}: {exc}") from exc


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG")


def list_images(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise ImageReadError(f"image folder not found: {root}")
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
