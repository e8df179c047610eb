"""The BPG file container: header fields, extension records and the compact HEVC payload.

Layout (bpg_spec): magic 0x425047fb; byte 4 = pixel_format u(3) alpha1 u(1)
bit_depth_minus_8 u(4); byte 5 = color_space u(4) extension_present u(1) alpha2 u(1)
limited_range u(1) animation u(1); ue7 width, height, picture_data_length (0 = to end of
file); [ue7 extension_data_length, records of ue7 tag, ue7 length, bytes]; then hevc_header
(ue7 length + compact SPS) and the HEVC NALs without VPS/SPS and without the first start code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shared.codecs.bitstream import read_ue7, write_ue7
from shared.codecs.bpg.hevc import CompactSps
from shared.codecs.errors import CorruptStreamError

MAGIC = b"\x42\x50\x47\xfb"

PIXEL_FORMATS = {0: "gray", 1: "420", 2: "422", 3: "444", 4: "420_video", 5: "422_video"}
PIXEL_FORMAT_CODES = {name: code for code, name in PIXEL_FORMATS.items()}
CHROMA_FORMAT_IDC = {0: 0, 1: 1, 2: 2, 3: 3, 4: 1, 5: 2}
#: libav's name for the decoded planes of each pixel format
LIBAV_PIX_FMTS = {0: "gray", 1: "yuv420p", 2: "yuv422p", 3: "yuv444p", 4: "yuv420p", 5: "yuv422p"}
COLOR_SPACES = {0: "ycbcr_bt601", 1: "rgb", 2: "ycgco", 3: "ycbcr_bt709", 4: "ycbcr_bt2020"}
EXTENSION_TAGS = {1: "exif", 2: "icc_profile", 3: "xmp", 4: "thumbnail", 5: "animation_control"}


@dataclass(frozen=True)
class BpgHeader:
    width: int
    height: int
    pixel_format: int = 1
    bit_depth: int = 8
    color_space: int = 0
    alpha1: bool = False
    alpha2: bool = False
    limited_range: bool = False
    animation: bool = False
    picture_data_length: int = 0
    extensions: tuple[tuple[int, bytes], ...] = field(default_factory=tuple)

    @property
    def has_alpha(self) -> bool:
        return self.alpha1 or self.alpha2

    @property
    def chroma_format_idc(self) -> int:
        return CHROMA_FORMAT_IDC[self.pixel_format]

    def to_bytes(self) -> bytes:
        ext = b"".join(write_ue7(tag) + write_ue7(len(body)) + body for tag, body in self.extensions)
        out = bytearray(MAGIC)
        out.append(self.pixel_format << 5 | int(self.alpha1) << 4 | (self.bit_depth - 8))
        out.append(
            self.color_space << 4
            | int(bool(ext)) << 3
            | int(self.alpha2) << 2
            | int(self.limited_range) << 1
            | int(self.animation)
        )
        out += write_ue7(self.width) + write_ue7(self.height) + write_ue7(self.picture_data_length)
        if ext:
            out += write_ue7(len(ext)) + ext
        return bytes(out)


@dataclass(frozen=True)
class BpgFile:
    header: BpgHeader
    sps: CompactSps
    hevc_header_length: int
    payload: bytes  # NALs after the hevc_header: PPS (no start code), SEI, slices
    header_bytes: int  # bytes before the payload


def parse(data: bytes, *, header_only: bool = False) -> BpgFile | BpgHeader:
    """Parse a BPG file. Raises CorruptStreamError with the reason on any malformed input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CorruptStreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 6:
        raise CorruptStreamError(f"not a BPG file: {len(data)} bytes is shorter than the header")
    if data[:4] != MAGIC:
        raise CorruptStreamError("not a BPG file (bad magic)")
    b4, b5 = data[4], data[5]
    pixel_format, alpha1, bit_depth = b4 >> 5, bool(b4 >> 4 & 1), (b4 & 15) + 8
    color_space, has_ext = b5 >> 4, bool(b5 >> 3 & 1)
    alpha2, limited, anim = bool(b5 >> 2 & 1), bool(b5 >> 1 & 1), bool(b5 & 1)
    if pixel_format not in PIXEL_FORMATS:
        raise CorruptStreamError(f"invalid BPG pixel_format {pixel_format}")
    if bit_depth > 14:
        raise CorruptStreamError(f"invalid BPG bit depth {bit_depth}")
    if color_space not in COLOR_SPACES:
        raise CorruptStreamError(f"invalid BPG color_space {color_space}")
    if pixel_format == 0 and color_space != 0:
        raise CorruptStreamError("grey BPG picture with a non-YCbCr colour space")
    width, pos = read_ue7(data, 6, "picture_width")
    height, pos = read_ue7(data, pos, "picture_height")
    if width == 0 or height == 0:
        raise CorruptStreamError(f"BPG picture has zero size ({width}x{height})")
    length, pos = read_ue7(data, pos, "picture_data_length")
    extensions: list[tuple[int, bytes]] = []
    if has_ext:
        ext_len, pos = read_ue7(data, pos, "extension_data_length")
        ext_end = pos + ext_len
        if ext_end > len(data):
            raise CorruptStreamError("truncated BPG extension data")
        while pos < ext_end:
            tag, pos = read_ue7(data[:ext_end], pos, "extension tag")
            blen, pos = read_ue7(data[:ext_end], pos, "extension length")
            if pos + blen > ext_end:
                raise CorruptStreamError("BPG extension record runs past the extension data")
            extensions.append((tag, data[pos : pos + blen]))
            pos += blen
    header = BpgHeader(
        width, height, pixel_format, bit_depth, color_space, alpha1, alpha2, limited, anim, length,
        tuple(extensions),
    )
    if header_only:
        return header
    if length and pos + length > len(data):
        raise CorruptStreamError(
            f"truncated BPG file: header declares {length} bytes of picture data, {len(data) - pos} present"
        )
    end = pos + length if length else len(data)
    hlen, hpos = read_ue7(data[:end], pos, "hevc_header_length")
    if hlen == 0 or hpos + hlen > end:
        raise CorruptStreamError("truncated or empty BPG hevc_header")
    sps = CompactSps.from_bytes(data[hpos : hpos + hlen])
    payload = data[hpos + hlen : end]
    if len(payload) < 3:
        raise CorruptStreamError("BPG file holds no picture data")
    return BpgFile(header, sps, hlen, payload, hpos + hlen)


def build(header: BpgHeader, sps: CompactSps, payload: bytes, *, explicit_length: bool = True) -> bytes:
    """Assemble a BPG file. With explicit_length the picture_data_length is written, so a
    truncated file is detected; bpgdec accepts both forms."""
    body = sps.to_bytes()
    picture = write_ue7(len(body)) + body + payload
    if explicit_length:
        header = replace(header, picture_data_length=len(picture))
    return header.to_bytes() + picture
