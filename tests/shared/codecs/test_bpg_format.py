"""The BPG container and HEVC parameter sets, checked against the BPG format specification (bpg_spec) and H.265."""

from __future__ import annotations

import numpy as np
import pytest

from shared.codecs.bitstream import (
    BitReader,
    BitWriter,
    escape_rbsp,
    read_ue7,
    split_annexb,
    unescape_rbsp,
    write_ue7,
)
from shared.codecs.bpg import container
from shared.codecs.bpg.codec import BpgCodec, decode_hevc, x265_annexb
from shared.codecs.bpg.hevc import CompactSps, PcmParams
from shared.codecs.errors import CorruptStreamError
from shared.codecs.yuv import plane_array

from .conftest import crop


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**30 - 1])
def test_ue7_round_trip_is_shortest_form(value: int) -> None:
    enc = write_ue7(value)
    assert read_ue7(enc, 0, "v") == (value, len(enc))
    assert len(enc) == max(1, -(-value.bit_length() // 7))
    assert enc[0] != 0x80


def test_ue7_known_bytes() -> None:
    assert write_ue7(768) == b"\x86\x00"
    assert write_ue7(127) == b"\x7f"
    assert write_ue7(128) == b"\x81\x00"
    with pytest.raises(CorruptStreamError, match="non-canonical"):
        read_ue7(b"\x80\x01", 0, "width")


@pytest.mark.parametrize(
    "header",
    [
        container.BpgHeader(768, 512),
        container.BpgHeader(1, 1, pixel_format=0, bit_depth=8, limited_range=True),
        container.BpgHeader(100000, 3, pixel_format=3, bit_depth=10, color_space=3, alpha1=True, alpha2=True),
        container.BpgHeader(4095, 2049, pixel_format=4, color_space=4, animation=True, picture_data_length=12345,
                            extensions=((1, b"exif!"), (2, b"\x00" * 300), (5, b"\x00\x01\x19"))),
    ],
)
def test_header_fields_parse_back_exactly(header: container.BpgHeader) -> None:
    raw = header.to_bytes()
    assert container.parse(raw, header_only=True) == header


def test_hand_built_header_from_the_spec() -> None:
    # magic; pixel_format=1 (4:2:0 JPEG siting), alpha1=0, bit_depth_minus_8=0;
    # color_space=0, extension_present=1, alpha2=0, limited_range=0, animation=0;
    # ue7 width 768 = 86 00, height 512 = 84 00, picture_data_length 0 = to end of file;
    # extension_data_length 5: tag 3 (XMP), length 3, b"abc"
    flags = bytes([0b001_0_0000, 0b0000_1_0_0_0])
    raw = bytes.fromhex("425047fb") + flags + bytes.fromhex("8600 8400 00 05 03 03") + b"abc"
    h = container.parse(raw, header_only=True)
    assert isinstance(h, container.BpgHeader)
    assert (h.width, h.height, h.pixel_format, h.bit_depth, h.color_space) == (768, 512, 1, 8, 0)
    assert not (h.alpha1 or h.alpha2 or h.limited_range or h.animation)
    assert h.picture_data_length == 0 and h.extensions == ((3, b"abc"),)
    assert h.to_bytes() == raw


def test_hand_built_compact_sps() -> None:
    # ue: log2_min_cb-3=0 '1', diff=3 '00100', log2_min_tb-2=0 '1', diff=3 '00100', depth=2 '011';
    # sao=1, pcm=0, strong_intra_smoothing=1, extension=0 → 21 bits, zero-padded to 3 bytes.
    bits = "1" + "00100" + "1" + "00100" + "011" + "1" + "0" + "1" + "0"
    raw = int(bits.ljust(24, "0"), 2).to_bytes(3, "big")
    sps = CompactSps.from_bytes(raw)
    assert sps == CompactSps(3, 3, 2, 3, 2, True, None, True)
    assert sps.to_bytes() == raw


def test_compact_sps_with_pcm_and_range_extension_round_trips() -> None:
    sps = CompactSps(3, 3, 2, 3, 1, False, PcmParams(7, 7, 0, 1, True), False, True, True, 0b010000000)
    assert CompactSps.from_bytes(sps.to_bytes()) == sps


def test_bit_writer_reader_and_emulation_prevention() -> None:
    w = BitWriter()
    for v in (0, 1, 2, 7, 255, 1000):
        w.ue(v)
    w.u(5, 17)
    r = BitReader(w.rbsp_trailing())
    assert [r.ue() for _ in range(6)] == [0, 1, 2, 7, 255, 1000] and r.u(5) == 17
    raw = bytes([0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 5])
    esc = escape_rbsp(raw)
    assert b"\x00\x00\x00" not in esc and b"\x00\x00\x01" not in esc
    assert unescape_rbsp(esc) == raw


def test_overhead_is_at_most_30_bytes(photo: np.ndarray) -> None:
    bpg = BpgCodec(level=5)
    for size in [(224, 224), (512, 768)]:
        data = bpg.encode(crop(photo, *size), 37)
        f = container.parse(data)
        assert isinstance(f, container.BpgFile)
        stream = b"\x00\x00\x01" + f.payload
        slice_bytes = sum(e - s for s, e in split_annexb(stream) if (stream[s] >> 1) & 63 <= 21)
        overhead = len(data) - slice_bytes
        assert overhead <= 30, f"{size}: {overhead} bytes of overhead"


def test_demuxed_stream_decodes_to_the_encoders_own_planes(photo: np.ndarray) -> None:
    bpg = BpgCodec(level=5)
    img = crop(photo, 77, 131)
    planes, _ = bpg.yuv_planes(img)
    annexb = x265_annexb(planes, "yuv420p", 30, "medium", "ssim")
    reference = decode_hevc(annexb)
    data = bpg.mux(annexb, img.shape[1], img.shape[0])
    _, ours = bpg.decode_planes(data)
    for i, plane in enumerate(reference.planes):
        ref = plane_array(plane)
        h, w = ours[i].shape
        np.testing.assert_array_equal(ours[i], ref[:h, :w])
    # the rebuilt SPS crops the coded 136×80 picture with a conformance window (in chroma units)
    _, rebuilt = bpg.demux(data)
    frame = decode_hevc(rebuilt)
    assert (frame.width, frame.height) == (132, 78) and (reference.width, reference.height) == (136, 80)


def test_muxed_payload_has_no_vps_sps_and_no_first_start_code(photo: np.ndarray) -> None:
    data = BpgCodec(level=5).encode(crop(photo, 64, 64), 30)
    f = container.parse(data)
    assert isinstance(f, container.BpgFile)
    assert (f.payload[0] >> 1) & 63 == 34  # the PPS, directly after the hevc_header
    types = [(f.payload[s] >> 1) & 63 for s, _ in split_annexb(b"\x00\x00\x01" + f.payload)]
    assert 32 not in types and 33 not in types


# A file written by the reference bpgenc: the 32-byte 32×32 feature-detection image a public
# browser codec-comparison page embeds as a data URI. Note picture_data_length 0 (bpgenc's usual
# "to the end of the file"), a 64×64 CTB and IDR_W_RADL slices, where our x265 writes others.
REFERENCE_BPGENC_32X32 = bytes.fromhex("425047fb2000202000039247404401c17181120000012601afe0e50abffba696")


def test_a_reference_bpgenc_file_decodes() -> None:
    bpg = BpgCodec()
    info = bpg.info(REFERENCE_BPGENC_32X32)
    assert (info.width, info.height, info.pixel_format, info.bit_depth) == (32, 32, "420", 8)
    assert info.extra["picture_data_length"] == 0 and info.extra["ctb_size"] == 64
    assert REFERENCE_BPGENC_32X32[9:13] == bytes.fromhex("03924740")  # hevc_header: length 3, compact SPS
    assert CompactSps.from_bytes(bytes.fromhex("924740")) == CompactSps(3, 3, 2, 3, 2, True, None, True)
    out = bpg.decode(REFERENCE_BPGENC_32X32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert int(out.max()) == 0  # the image is black
    # ours for the same black picture (also 32 bytes with PyAV 18.1) differs only in x265's choices
    # (CTB 32, IDR_N_LP) and in writing the real picture_data_length; the pixels agree
    ours = bpg.encode(np.zeros((32, 32, 3), np.uint8), 29)
    assert np.array_equal(bpg.decode(ours), out)
