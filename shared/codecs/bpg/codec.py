"""The BPG codec: x265 (through PyAV) with bpgenc's semantics, and our own container code."""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any

import av
import numpy as np

from shared.codecs import yuv
from shared.codecs.base import Codec, QualityScale, StreamInfo, check_rgb, check_size
from shared.codecs.bitstream import split_annexb
from shared.codecs.bpg import container
from shared.codecs.bpg.hevc import NAL_SPS, NAL_VPS, CompactSps
from shared.codecs.errors import CodecError, CorruptStreamError, InvalidQualityError, UnsupportedFeatureError
from shared.codecs.registry import register_codec
from shared.runtime import RuntimeSettings, current_runtime

#: bpgenc's compression level (-m) → x265 preset; 8 is bpgenc's default.
X265_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)
#: Pixel formats our encoder writes (a subset of the container's).
ENCODE_FORMATS = ("420", "444", "gray")
#: bpgdec-exact output conversion (shared/codecs/yuv.py); part of the decoder's identity.
DECODER_REVISION = "bpgdec-0.9.8-exact"

# libav's log callback is process-global; silence x265/hevc chatter once.
av.logging.set_level(av.logging.PANIC)


def x265_annexb(planes: list[np.ndarray], pix_fmt: str, qp: int, preset: str, tune: str | None,
                extra_params: str = "") -> bytes:
    """Encode one intra picture with libx265; returns its raw Annex-B stream.

    `planes` are uint8 arrays whose sizes are already padded to the minimum CU size.
    """
    height, width = planes[0].shape
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = pix_fmt
    ctx.time_base = Fraction(1, 25)
    params = f"qp={qp}:keyint=1:info=0:log-level=none:annexb=1{extra_params}"
    options = {"preset": preset, "x265-params": params}
    if tune:
        options["tune"] = tune
    ctx.options = options
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, planes, strict=True):
        h, w = data.shape
        yuv.plane_array(plane)[:h, :w] = data
    try:
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    except av.FFmpegError as exc:
        raise CodecError(f"x265 failed to encode a {width}x{height} picture: {exc}") from exc
    return b"".join(bytes(p) for p in packets)


def _pad_edge(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = plane.shape
    if (h, w) == (height, width):
        return plane
    return np.pad(plane, ((0, height - h), (0, width - w)), mode="edge")


@register_codec
class BpgCodec(Codec):
    """BPG files: HEVC intra pictures in the compact BPG container."""

    name = "bpg"
    extension = ".bpg"
    quality = QualityScale("qp", 0, 51, 29, False, "bpgenc -q: 0 best, 51 worst; I-slice QP is q-3")
    description = "BPG (HEVC intra, x265 via PyAV), bpgenc 0.9.8 semantics"

    def __init__(self, level: int = 8, pixel_format: str = "420", explicit_length: bool = True,
                 runtime: RuntimeSettings | None = None) -> None:
        if not 0 <= level <= 9:
            raise InvalidQualityError(f"compression level {level} is outside 0..9")
        if pixel_format not in ENCODE_FORMATS:
            raise UnsupportedFeatureError(
                f"BPG pixel format {pixel_format!r}; choose one of {', '.join(ENCODE_FORMATS)}"
            )
        self.level = level
        self.pixel_format = pixel_format
        self.explicit_length = explicit_length
        # x265 thread counts (speed only, never the bytes); None: the process's shared.runtime settings
        self.runtime = runtime

    def settings(self) -> dict[str, Any]:
        return {"level": self.level, "preset": X265_PRESETS[self.level], "tune": "ssim",
                "pixel_format": self.pixel_format, "x265": _libav_version()}

    def decoder_id(self) -> str:
        return f"bpg-{DECODER_REVISION}-{_libav_version()}"

    # -- encode -------------------------------------------------------------------------------------
    def yuv_planes(self, image: np.ndarray) -> tuple[list[np.ndarray], int]:
        """RGB → padded uint8 planes as bpgenc prepares them, and the minimum CB size used."""
        rgb = check_rgb(image)
        h, w = rgb.shape[:2]
        # x265 refuses a side of 8; such pictures are coded with 16×16 minimum CUs instead.
        cb = 16 if min(-(-h // 8), -(-w // 8)) == 1 else 8
        ph, pw = -(-h // cb) * cb, -(-w // cb) * cb
        if self.pixel_format == "420":
            y, cbp, crp = yuv.rgb_to_yuv420(rgb)
            return [_pad_edge(y, ph, pw), _pad_edge(cbp, ph // 2, pw // 2), _pad_edge(crp, ph // 2, pw // 2)], cb
        planes = [yuv.to_u8(p) for p in yuv.rgb_to_ycc(rgb)]
        return [_pad_edge(p, ph, pw) for p in planes[: 1 if self.pixel_format == "gray" else 3]], cb

    def encode(self, image: np.ndarray, quality: int | None = None) -> bytes:
        qp = self._quality(quality)
        planes, cb = self.yuv_planes(image)
        pix_fmt = container.LIBAV_PIX_FMTS[container.PIXEL_FORMAT_CODES[self.pixel_format]]
        extra = (":min-cu-size=16" if cb == 16 else "") + (self.runtime or current_runtime()).x265_params()
        stream = x265_annexb(planes, pix_fmt, qp, X265_PRESETS[self.level], "ssim", extra)
        h, w = np.asarray(image).shape[:2]
        return self.mux(stream, w, h)

    def mux(self, annexb: bytes, width: int, height: int) -> bytes:
        """Wrap an encoder's Annex-B stream (VPS, SPS, PPS, slices) into a BPG file."""
        spans = split_annexb(annexb)
        if len(spans) < 3:
            raise CodecError("HEVC stream is missing parameter sets or slices")
        (v0, _v1), (s0, s1) = spans[0], spans[1]
        if (annexb[v0] >> 1) & 63 != NAL_VPS or (annexb[s0] >> 1) & 63 != NAL_SPS:
            raise CodecError("HEVC stream does not start with VPS and SPS")
        sps = CompactSps.from_sps_nal(annexb[s0:s1])
        header = container.BpgHeader(width, height, pixel_format=container.PIXEL_FORMAT_CODES[self.pixel_format])
        return container.build(header, sps, annexb[spans[2][0] :], explicit_length=self.explicit_length)

    # -- decode -------------------------------------------------------------------------------------
    def demux(self, data: bytes) -> tuple[container.BpgFile, bytes]:
        """Parse a BPG file and rebuild a standard Annex-B HEVC stream from it."""
        parsed = container.parse(data)
        assert isinstance(parsed, container.BpgFile)
        h = parsed.header
        check_size(h.width, h.height)  # before the decoder allocates anything
        if h.has_alpha:
            raise UnsupportedFeatureError("BPG alpha planes are not supported")
        if h.animation:
            raise UnsupportedFeatureError("animated BPG files are not supported")
        if h.bit_depth != 8:
            raise UnsupportedFeatureError(f"only 8-bit BPG is supported, this file is {h.bit_depth}-bit")
        ps = parsed.sps.parameter_sets(h.width, h.height, h.chroma_format_idc, h.bit_depth)
        return parsed, ps + b"\x00\x00\x01" + parsed.payload

    def decode_planes(self, data: bytes) -> tuple[container.BpgHeader, list[np.ndarray]]:
        """Decode to the cropped Y/Cb/Cr planes (uint8) as stored."""
        parsed, annexb = self.demux(data)
        h = parsed.header
        frame = decode_hevc(annexb)
        if frame.width < h.width or frame.height < h.height:
            raise CorruptStreamError("decoded picture is smaller than the BPG header declares")
        expected = container.LIBAV_PIX_FMTS[h.pixel_format]
        if frame.format.name != expected:
            raise CorruptStreamError(f"decoded pixel format {frame.format.name}, header says {expected}")
        sub_w = 2 if h.chroma_format_idc in (1, 2) else 1
        sub_h = 2 if h.chroma_format_idc == 1 else 1
        planes = []
        for i, plane in enumerate(frame.planes):
            ph = h.height if i == 0 else -(-h.height // sub_h)
            pw = h.width if i == 0 else -(-h.width // sub_w)
            planes.append(yuv.plane_array(plane)[:ph, :pw])
        return h, planes

    def decode(self, data: bytes) -> np.ndarray:
        """Decode to RGB exactly as the reference `bpgdec` 0.9.8 does (8-bit output)."""
        h, planes = self.decode_planes(data)
        if h.pixel_format == 0:
            return yuv.grey_to_rgb(planes[0], h.limited_range)
        cf = h.chroma_format_idc
        sub_w = 2 if cf in (1, 2) else 1
        sub_h = 2 if cf == 1 else 1
        centred = h.pixel_format in (1, 2)  # JPEG siting; 4 and 5 are co-sited horizontally
        cbp = yuv.upsample_chroma(planes[1], h.height, h.width, sub_h, sub_w, centred)
        crp = yuv.upsample_chroma(planes[2], h.height, h.width, sub_h, sub_w, centred)
        return yuv.ycc_to_rgb(planes[0], cbp, crp, h.color_space, h.limited_range)

    def info(self, data: bytes) -> StreamInfo:
        parsed = container.parse(data)
        assert isinstance(parsed, container.BpgFile)
        h, s = parsed.header, parsed.sps
        extra = {
            "color_space": container.COLOR_SPACES[h.color_space],
            "limited_range": h.limited_range,
            "alpha": h.has_alpha,
            "animation": h.animation,
            "picture_data_length": h.picture_data_length,
            "extensions": [container.EXTENSION_TAGS.get(t, f"tag{t}") for t, _ in h.extensions],
            "min_cb_size": 1 << s.log2_min_cb,
            "ctb_size": 1 << (s.log2_min_cb + s.log2_diff_max_min_cb),
            "sao": s.sao_enabled,
            "strong_intra_smoothing": s.strong_intra_smoothing,
            "header_bytes": parsed.header_bytes,
            "file_bytes": len(data),
        }
        return StreamInfo(self.name, h.width, h.height, container.PIXEL_FORMATS[h.pixel_format], h.bit_depth, extra)


def decode_hevc(annexb: bytes) -> av.VideoFrame:
    """Decode the single picture of an Annex-B HEVC stream with libavcodec's native decoder."""
    ctx = av.CodecContext.create("hevc", "r")
    ctx.options = {"err_detect": "crccheck+bitstream+buffer+explode"}
    ctx.thread_count = 1
    frames: list[av.VideoFrame] = []
    try:
        for packet in ctx.parse(annexb) + ctx.parse(None):
            frames.extend(ctx.decode(packet))
        frames.extend(ctx.decode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise CorruptStreamError(f"HEVC payload does not decode: {exc}") from exc
    if not frames:
        raise CorruptStreamError("HEVC payload holds no decodable picture")
    return frames[0]


_version_lock = threading.Lock()
_version: str | None = None


def _libav_version() -> str:
    """PyAV's and libavcodec's versions stand in for x265's and the HEVC decoder's in cache keys
    (both ship inside the av wheel)."""
    global _version
    with _version_lock:
        if _version is None:
            _version = "av-" + av.__version__ + "-lavc-" + ".".join(map(str, av.library_versions["libavcodec"]))
        return _version
