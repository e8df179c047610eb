from __future__ import annotations

import numpy as np
import pytest

from shared.codecs import codec_names, get_codec

AVAILABLE = codec_names(available_only=True)
# Low, middle and high quality per codec, in increasing fidelity.
QUALITY_LADDER = {
    "bpg": [40, 32, 24],
    "jpeg": [20, 50, 90],
    "webp": [20, 50, 90],
    "avif": [20, 50, 85],
    "jxl": [20, 50, 90],
    "vvc": [42, 34, 26],
}


def fast_codec(name: str):  # type: ignore[no-untyped-def]
    """The codec with options that keep tests quick (BPG level 5 = x265 medium)."""
    return get_codec(name, level=5) if name == "bpg" else get_codec(name)


@pytest.fixture(scope="session")
def photo(kodak_image: np.ndarray) -> np.ndarray:
    return kodak_image


def crop(photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """A natural-image crop of any size (the photo is tiled when it is too small)."""
    reps = (-(-(h + 100) // photo.shape[0]), -(-(w + 200) // photo.shape[1]), 1)
    return np.ascontiguousarray(np.tile(photo, reps)[100 : 100 + h, 200 : 200 + w])
