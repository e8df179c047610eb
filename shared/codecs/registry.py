"""The codec registry: the single list of codec names that CLIs, services and configs read."""

from __future__ import annotations

from typing import Any

from shared.codecs.base import Codec
from shared.codecs.errors import CodecUnavailableError
from shared.registry import Registry

CODECS: Registry[type[Codec]] = Registry("codec")


def register_codec(cls: type[Codec]) -> type[Codec]:
    CODECS.register(cls.name, cls)
    return cls


def get_codec(name: str, **options: Any) -> Codec:
    """Instantiate a registered codec; raises if unknown or if its optional dependency is missing."""
    cls = CODECS.get(name)
    reason = cls.unavailable_reason()
    if reason is not None:
        raise CodecUnavailableError(f"codec {cls.name!r} is unavailable: {reason}")
    return cls(**options)


def codec_names(available_only: bool = False) -> list[str]:
    return [n for n in CODECS.names() if not available_only or CODECS.get(n).unavailable_reason() is None]


def codec_for_extension(extension: str) -> str:
    ext = extension.lower() if extension.startswith(".") else "." + extension.lower()
    for name in CODECS.names():
        cls = CODECS.get(name)
        if ext == cls.extension or ext in getattr(cls, "aliases", ()):
            return name
    raise CodecUnavailableError(f"no codec writes {extension!r} files; known: {', '.join(CODECS.names())}")


def detect_codec(data: bytes, filename: str | None = None) -> str:
    """Name the codec of a stream from its signature, falling back to the file extension."""
    head = bytes(data[:32])
    if head.startswith(b"BPG\xfb"):
        return "bpg"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "avif"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL "):
        return "jxl"
    if filename is not None:
        suffix = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
        if suffix:
            return codec_for_extension(suffix)
    raise CodecUnavailableError("cannot tell which codec wrote this stream (unknown signature)")
