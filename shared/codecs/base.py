"""The one interface every standard codec implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from shared.codecs.errors import InvalidImageError, InvalidQualityError, StreamTooLargeError
from shared.imageio import rgb_problem

#: Largest side and pixel count accepted by encoders and decoders. A stream that declares more is
#: refused before anything is allocated (64 Mpx ≈ 192 MB of RGB).
MAX_SIDE = 16384
MAX_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True)
class QualityScale:
    """What a codec's quality knob means."""

    name: str  # "qp" or "quality"
    minimum: int
    maximum: int
    default: int
    higher_is_better: bool
    description: str

    def check(self, value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidQualityError(f"{self.name} must be an integer, got {value!r}")
        if not self.minimum <= int(value) <= self.maximum:
            raise InvalidQualityError(
                f"{self.name} {value} is outside {self.minimum}..{self.maximum} ({self.description})"
            )
        return int(value)


@dataclass(frozen=True)
class StreamInfo:
    """What a stream's header says, read without decoding the picture."""

    codec: str
    width: int
    height: int
    pixel_format: str  # "420", "444", "gray", ...
    bit_depth: int
    extra: dict[str, Any] = field(default_factory=dict)


class Codec(ABC):
    """Encode RGB uint8 H×W×3 to bytes at a quality; decode bytes back to RGB."""

    name: ClassVar[str]
    extension: ClassVar[str]  # with the dot, e.g. ".bpg"
    quality: ClassVar[QualityScale]
    description: ClassVar[str]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when usable here; otherwise why not and what to install."""
        return None

    @abstractmethod
    def encode(self, image: np.ndarray, quality: int | None = None) -> bytes: ...

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray: ...

    @abstractmethod
    def info(self, data: bytes) -> StreamInfo: ...

    def settings(self) -> dict[str, Any]:
        """Everything that, with the quality, determines the bytes: encoder options and the
        versions of the libraries that write them (used in cache keys)."""
        return {}

    def decoder_id(self) -> str:
        """Identity and version of the decoder that turns bytes back into pixels (used in cache
        keys of decoded-image metrics and task outputs): changes whenever decoded pixels could."""
        return f"{self.name}-decoder"

    def _quality(self, quality: int | None) -> int:
        return self.quality.default if quality is None else self.quality.check(quality)


def check_rgb(image: object) -> np.ndarray:
    """Validate an encoder input: C-contiguous H×W×3 uint8 within the size limits."""
    problem = rgb_problem(image)
    if problem is not None:
        raise InvalidImageError(problem)
    assert isinstance(image, np.ndarray)
    check_size(image.shape[1], image.shape[0])
    return np.ascontiguousarray(image)


def check_size(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise StreamTooLargeError(
            f"picture {width}x{height} exceeds the limit ({MAX_SIDE} px per side, {MAX_PIXELS} px)"
        )
