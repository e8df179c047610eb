"""Bad input: typed errors with clear messages, in bounded time and memory."""

from __future__ import annotations

import contextlib
import resource
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codecs import CodecError, CorruptStreamError, InvalidImageError, InvalidQualityError, get_codec
from shared.codecs.bpg import container
from shared.codecs.errors import StreamTooLargeError, UnsupportedFeatureError

from .conftest import AVAILABLE, crop, fast_codec


@pytest.fixture(scope="module")
def valid_bpg(photo: np.ndarray) -> bytes:
    return get_codec("bpg", level=3).encode(crop(photo, 40, 56), 36)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_every_prefix_of_a_valid_file_is_rejected(valid_bpg: bytes) -> None:
    bpg = get_codec("bpg")
    rss0 = _peak_rss_mb()
    t0 = time.monotonic()
    for n in range(len(valid_bpg)):
        with pytest.raises(CodecError) as err:
            bpg.decode(valid_bpg[:n])
        assert str(err.value)
    assert time.monotonic() - t0 < 60
    assert _peak_rss_mb() - rss0 < 200
    assert bpg.decode(valid_bpg).shape == (40, 56, 3)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "shorter than the header"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "bad magic"),
        (b"BPG\xfb", "shorter than the header"),
    ],
)
def test_empty_and_wrong_magic(data: bytes, match: str) -> None:
    with pytest.raises(CorruptStreamError, match=match):
        get_codec("bpg").decode(data)


def test_absurd_declared_size_is_refused_before_allocation() -> None:
    raw = container.BpgHeader(100000, 100000).to_bytes() + b"\x03\x92\x47\x40" + b"\x00" * 64
    rss0 = _peak_rss_mb()
    with pytest.raises(StreamTooLargeError, match="exceeds the limit"):
        get_codec("bpg").decode(raw)
    assert get_codec("bpg").info(raw).width == 100000  # reading the header allocates nothing
    assert _peak_rss_mb() - rss0 < 50


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (container.BpgHeader(16, 16, alpha1=True), "alpha"),
        (container.BpgHeader(16, 16, animation=True), "animated"),
        (container.BpgHeader(16, 16, bit_depth=10), "8-bit"),
    ],
)
def test_unsupported_features_are_refused_clearly(header: container.BpgHeader, match: str, valid_bpg: bytes) -> None:
    f = container.parse(valid_bpg)
    assert isinstance(f, container.BpgFile)
    data = container.build(header, f.sps, f.payload)
    with pytest.raises(UnsupportedFeatureError, match=match):
        get_codec("bpg").decode(data)


def test_corrupted_payload_never_crashes(valid_bpg: bytes) -> None:
    rng = np.random.default_rng(1)
    bpg = get_codec("bpg")
    for _ in range(40):
        buf = bytearray(valid_bpg)
        for i in rng.integers(10, len(buf), size=4):
            buf[i] ^= int(rng.integers(1, 256))
        try:
            out = bpg.decode(bytes(buf))
        except CodecError:
            continue
        assert out.shape == (40, 56, 3)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_give_typed_errors(data: bytes) -> None:
    with pytest.raises(CodecError):
        get_codec("bpg").decode(data)


@settings(max_examples=300, deadline=2000)
@given(st.binary(min_size=0, max_size=64))
def test_random_bytes_after_a_valid_magic(data: bytes) -> None:
    bpg = get_codec("bpg")
    with contextlib.suppress(CodecError):
        bpg.decode(b"BPG\xfb" + data)
    with contextlib.suppress(CodecError):
        bpg.info(b"BPG\xfb" + data)


@settings(max_examples=200, deadline=2000)
@given(st.binary(min_size=1, max_size=40))
def test_random_compact_sps(data: bytes) -> None:
    from shared.codecs.bpg.hevc import CompactSps

    with contextlib.suppress(CodecError):
        CompactSps.from_bytes(data)


@pytest.mark.parametrize("name", AVAILABLE)
def test_bad_images_and_qualities(name: str) -> None:
    codec = fast_codec(name)
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((0, 8, 3), np.uint8),
                np.zeros((8, 8, 4), np.uint8), [[1, 2, 3]]):
        with pytest.raises(InvalidImageError):
            codec.encode(bad, codec.quality.default)  # type: ignore[arg-type]
    with pytest.raises(InvalidQualityError, match=codec.quality.name):
        codec.encode(np.zeros((8, 8, 3), np.uint8), codec.quality.maximum + 1)
    with pytest.raises(StreamTooLargeError):
        codec.encode(np.zeros((1, 20000, 3), np.uint8), codec.quality.default)


@pytest.mark.parametrize("name", AVAILABLE)
def test_garbage_and_truncated_streams_for_every_codec(name: str, photo: np.ndarray) -> None:
    codec = fast_codec(name)
    data = codec.encode(crop(photo, 32, 48), codec.quality.default)
    for bad in (b"", b"\x00", data[: len(data) // 2], bytes(64)):
        with pytest.raises(CodecError):
            codec.decode(bad)


def test_jpeg_header_claiming_a_huge_picture_is_too_large_not_a_crash() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (30000).to_bytes(2, "big") * 2  # height, width in the SOF0 segment
    for call in (get_codec("jpeg").info, get_codec("jpeg").decode):
        with pytest.raises(StreamTooLargeError):
            call(bytes(data))
