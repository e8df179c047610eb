from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from edge.errors import FrameDecodeError, FrameTooLargeError
from edge.frames import decode_frame
from tests.edge.conftest import png_bytes


def huge_png_header(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring width×height, then a tiny IDAT: ~60 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + \
        chunk(b"IEND", b"")


def test_png_and_jpeg_decode_to_rgb(small_frame: np.ndarray) -> None:
    assert np.array_equal(decode_frame(png_bytes(small_frame), 10**6), small_frame)
    buf = io.BytesIO()
    Image.fromarray(small_frame).save(buf, "JPEG", quality=95)
    out = decode_frame(buf.getvalue(), 10**6)
    assert out.shape == small_frame.shape and np.abs(out.astype(int) - small_frame).mean() < 4


def test_grey_and_alpha_become_rgb() -> None:
    for mode, shape in (("L", (9, 7)), ("RGBA", (9, 7, 4)), ("P", (9, 7))):
        arr = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr, mode).save(buf, "PNG")
        out = decode_frame(buf.getvalue(), 1000)
        assert out.shape == (9, 7, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"%PDF-1.7\n" + b"x" * 100, b"GIF89a" + b"\0" * 40])
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(FrameDecodeError):
        decode_frame(data, 10**6)


def test_truncated_png(small_png: bytes) -> None:
    with pytest.raises(FrameDecodeError, match=r"truncated|readable"):
        decode_frame(small_png[: len(small_png) // 2], 10**6)


def test_huge_dimensions_are_refused_from_the_header() -> None:
    data = huge_png_header(100_000, 100_000)
    assert len(data) < 100
    with pytest.raises(FrameTooLargeError, match="at most 40000000 pixels"):
        decode_frame(data, 40_000_000)
    with pytest.raises(FrameTooLargeError, match="8000x6000"):  # over our limit, under Pillow's
        decode_frame(huge_png_header(8000, 6000), 40_000_000)
    with pytest.raises(FrameTooLargeError):  # under the pixel budget but over the codecs' side limit
        decode_frame(huge_png_header(20_000, 10), 40_000_000)
