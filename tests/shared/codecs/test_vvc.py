"""VVC specifics: header-only `info` from the SPS, and the size SEI for odd sizes."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from shared.codecs import get_codec
from shared.codecs.bitstream import BitWriter, escape_rbsp
from shared.codecs.errors import CodecError, CorruptStreamError
from shared.codecs.vvc import VvcCodec, parse_sps

from .conftest import AVAILABLE, crop

pytestmark = pytest.mark.skipif("vvc" not in AVAILABLE, reason="VVC needs the codecs-extra extra")


def _sps_nal(width: int, height: int, window: tuple[int, int, int, int] | None = None, gci: bool = False,
             sublayers_minus1: int = 2) -> bytes:
    """A hand-built VVC SPS prefix (H.266 7.3.2.4) up to the conformance window, as an Annex-B NAL."""
    w = BitWriter()
    w.u(4, 0), w.u(4, 0), w.u(3, sublayers_minus1), w.u(2, 1), w.u(2, 1), w.flag(True)
    w.u(7, 1), w.u(1, 0), w.u(8, 51), w.u(1, 1), w.u(1, 0)
    w.flag(gci)
    if gci:
        w.u(71, 0)  # what follows is never read: the parser gives up on constraint info
    while w.nbits % 8:
        w.u(1, 0)
    for i in range(sublayers_minus1):
        w.flag(i == 0)
    while w.nbits % 8:
        w.u(1, 0)
    w.u(8, 51)  # the one present sublayer level
    w.u(8, 1), w.u(32, 0xDEADBEEF)  # one sub-profile
    w.flag(False), w.flag(True), w.flag(False)  # gdr, resampling, res change
    w.ue(width), w.ue(height)
    w.flag(window is not None)
    for v in window or ():
        w.ue(v)
    return b"\x00\x00\x01" + bytes([0x00, (15 << 3) | 1]) + escape_rbsp(w.rbsp_trailing())


def test_hand_built_sps_parses() -> None:
    assert parse_sps(_sps_nal(640, 480)) == (640, 480, 1)
    # conformance window offsets count chroma samples in 4:2:0: 2 px each
    assert parse_sps(_sps_nal(648, 488, (1, 3, 0, 4))) == (640, 480, 1)
    assert parse_sps(_sps_nal(640, 480, gci=True)) is None
    with pytest.raises(CorruptStreamError, match="empty picture"):
        parse_sps(_sps_nal(16, 16, (4, 4, 0, 0)))
    with pytest.raises(CorruptStreamError, match="no sequence parameter set"):
        parse_sps(b"\x00\x00\x01\x00\x81\x00")
    whole = _sps_nal(640, 480)
    for cut in range(5, len(whole) - 1):  # a truncated SPS is a typed error, never an IndexError
        with contextlib.suppress(CorruptStreamError):
            parse_sps(whole[:cut])


@pytest.mark.parametrize("size", [(1, 1), (13, 17), (250, 250), (333, 501), (600, 8)])
def test_info_reads_the_header_without_decoding(size: tuple[int, int], kodak_image: np.ndarray,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    codec = get_codec("vvc")
    data = codec.encode(crop(kodak_image, *size), 37)
    frame = codec._decode_frame(data)

    def no_decoding(self: VvcCodec, data: bytes) -> None:
        raise AssertionError("info() decoded the stream")

    monkeypatch.setattr(VvcCodec, "_decode_frame", no_decoding)
    info = codec.info(data)
    assert (info.width, info.height) == (size[1], size[0]) and info.pixel_format == "420"
    assert info.extra["coded_size"] == [frame.width, frame.height]


def test_info_rejects_non_vvc() -> None:
    codec = get_codec("vvc")
    for bad in (b"", b"BPG\xfb", b"\x00\x00\x01\x00\x81"):
        with pytest.raises(CodecError):
            codec.info(bad)
