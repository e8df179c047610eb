"""Typed errors of the codec layer. Every failure a caller can cause raises one of these."""

from __future__ import annotations


class CodecError(Exception):
    """Base class of every codec-layer error."""


class InvalidImageError(CodecError, ValueError):
    """The image handed to an encoder is not an H×W×3 uint8 array of a supported size."""


class InvalidQualityError(CodecError, ValueError):
    """The quality / QP is outside the codec's range."""


class CorruptStreamError(CodecError):
    """The bytes are not a valid stream of this codec (empty, truncated, wrong magic, garbage)."""


class UnsupportedFeatureError(CodecError):
    """A valid stream uses a feature this implementation refuses (alpha, animation, 10-bit...)."""


class StreamTooLargeError(CodecError):
    """The stream declares a picture larger than the configured decode limit."""


class CodecUnavailableError(CodecError):
    """The codec needs an optional dependency that is not installed."""
