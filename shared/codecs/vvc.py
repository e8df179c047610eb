"""VVC (H.266) intra pictures: vvenc through the static ffmpeg in `imageio-ffmpeg`, decoded by PyAV.

The file is a plain VVC Annex-B stream. VVC cannot crop an odd number of 4:2:0 pixels, so odd
sizes are padded to even by edge replication and the true size is carried in a trailing
user-data-unregistered SEI (29 bytes), which other decoders ignore. `info` reads the size from
the SPS without decoding (vvenc writes no general constraint info; a stream that has it is
decoded instead).
"""

from __future__ import annotations

import subprocess
from typing import Any

import av
import numpy as np

from shared.codecs import yuv
from shared.codecs.base import Codec, QualityScale, StreamInfo, check_rgb
from shared.codecs.bitstream import BitReader, escape_rbsp, split_annexb, unescape_rbsp
from shared.codecs.errors import CodecError, CorruptStreamError
from shared.codecs.registry import register_codec

_SIZE_UUID = bytes.fromhex("8e0f5b1a3c6d4e2fa1b2c3d4e5f60718")  # PrepICM true picture size
_SUFFIX_SEI = b"\x00\xc1"  # nal_unit_type 24 (suffix SEI), layer 0, temporal id 0
_ENCODE_TIMEOUT_S = 600
_SPS_NUT = 15
_CHROMA_FORMATS = {0: "gray", 1: "420", 2: "422", 3: "444"}


def parse_sps(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, chroma_format_idc) from the stream's first SPS (H.266 7.3.2.4), conformance
    window applied; None when the SPS carries general constraint info, which is not parsed here."""
    for start, end in split_annexb(data):
        if end - start < 3 or data[start + 1] >> 3 != _SPS_NUT:
            continue
        r = BitReader(unescape_rbsp(data[start + 2 : end]), "VVC SPS")
        r.u(8)  # sps and vps ids
        max_sublayers_minus1 = r.u(3)
        chroma = r.u(2)
        r.u(2)  # log2 CTU size
        if r.flag():  # profile_tier_level(1, max_sublayers_minus1)
            r.u(7 + 1 + 8 + 1 + 1)  # profile, tier, level, frame-only, multilayer
            if r.flag():  # gci_present_flag: a long, version-dependent flag list
                return None
            r.u(-r.pos % 8)
            present = [r.flag() for _ in range(max_sublayers_minus1)]
            r.u(-r.pos % 8)
            r.u(8 * sum(present))
            r.u(32 * r.u(8))  # sub-profiles
        r.u(1)  # sps_gdr_enabled_flag
        if r.flag():  # sps_ref_pic_resampling_enabled_flag
            r.u(1)
        width, height = r.ue(), r.ue()
        if r.flag():  # conformance window, in chroma sample units
            left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
            width -= (2 if chroma in (1, 2) else 1) * (left + right)
            height -= (2 if chroma == 1 else 1) * (top + bottom)
        if width <= 0 or height <= 0:
            raise CorruptStreamError(f"VVC SPS declares an empty picture ({width}×{height})")
        return width, height, chroma
    raise CorruptStreamError("VVC stream has no sequence parameter set")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _ffmpeg_version() -> str:
    """The static ffmpeg (with its libvvenc) that writes the bitstreams, for cache keys."""
    try:
        import imageio_ffmpeg

        return f"imageio-ffmpeg-{imageio_ffmpeg.__version__}-{imageio_ffmpeg.get_ffmpeg_version()}"
    except (ImportError, RuntimeError):
        return "unavailable"


@register_codec
class VvcCodec(Codec):
    name = "vvc"
    extension = ".266"
    aliases = (".vvc",)
    quality = QualityScale("qp", 0, 63, 32, False, "vvenc QP: 0 best, 63 worst")
    description = "VVC intra via vvenc (imageio-ffmpeg's ffmpeg), 8-bit 4:2:0, QPA off"

    def __init__(self, preset: str = "fast") -> None:
        self.preset = preset

    def settings(self) -> dict[str, Any]:
        return {"preset": self.preset, "qpa": 0, "internalbitdepth": 8, "ffmpeg": _ffmpeg_version()}

    def decoder_id(self) -> str:
        return f"vvc-lavc-{'.'.join(map(str, av.library_versions['libavcodec']))}-bpgdec-0.9.8-upsampling"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            _ffmpeg()
        except (ImportError, RuntimeError):
            return "install the extra: pip install 'prepicm[codecs-extra]' (imageio-ffmpeg with libvvenc)"
        return None

    def encode(self, image: np.ndarray, quality: int | None = None) -> bytes:
        rgb = check_rgb(image)
        qp = self._quality(quality)
        h, w = rgb.shape[:2]
        # 4:2:0 needs even sides and vvenc refuses pictures below 16 px
        ph, pw = max(16, h + h % 2), max(16, w + w % 2)
        if (ph, pw) != (h, w):
            rgb = np.pad(rgb, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        planes = yuv.rgb_to_yuv420(rgb)
        raw = b"".join((p.astype(np.uint16) << 2).tobytes() for p in planes)
        cmd = [
            _ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p10le",
            "-color_range", "pc", "-s", f"{pw}x{ph}", "-i", "-", "-frames:v", "1", "-c:v", "libvvenc",
            "-qp", str(qp), "-qpa", "0", "-preset", self.preset, "-vvenc-params", "internalbitdepth=8",
            "-f", "vvc", "-",
        ]
        try:
            proc = subprocess.run(cmd, input=raw, capture_output=True, timeout=_ENCODE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CodecError(f"vvenc timed out after {_ENCODE_TIMEOUT_S} s") from exc
        if proc.returncode != 0 or not proc.stdout:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CodecError(f"vvenc failed: {msg[0] if msg else proc.returncode}")
        stream = proc.stdout
        if (ph, pw) != (h, w):
            body = bytes([5, 20]) + _SIZE_UUID + w.to_bytes(2, "big") + h.to_bytes(2, "big") + b"\x80"
            stream += b"\x00\x00\x01" + _SUFFIX_SEI + escape_rbsp(body)
        return stream

    def _true_size(self, data: bytes) -> tuple[int, int] | None:
        i = data.rfind(_SIZE_UUID)
        if i < 2 or data[i - 2] != 5:
            return None
        tail = unescape_rbsp(data[i + 16 : i + 24])
        if len(tail) < 4:
            raise CorruptStreamError("truncated VVC size SEI")
        return int.from_bytes(tail[:2], "big"), int.from_bytes(tail[2:4], "big")

    def _decode_frame(self, data: bytes) -> av.VideoFrame:
        if not data or b"\x00\x00\x01" not in data[:4]:
            raise CorruptStreamError("not a VVC Annex-B stream")
        ctx = av.CodecContext.create("vvc", "r")
        # libavcodec's threaded VVC decoder races on narrow pictures (a 16-px-wide stream decoded to
        # different, corrupt pixels run to run); one thread is deterministic and as fast for one intra picture.
        ctx.thread_count = 1
        ctx.options = {"err_detect": "crccheck+bitstream+buffer+explode"}
        try:
            frames = [f for p in ctx.parse(data) + ctx.parse(None) for f in ctx.decode(p)]
            frames += list(ctx.decode(None))
        except (av.FFmpegError, ValueError) as exc:
            raise CorruptStreamError(f"VVC stream does not decode: {exc}") from exc
        if not frames:
            raise CorruptStreamError("VVC stream holds no decodable picture")
        return frames[0]

    def decode(self, data: bytes) -> np.ndarray:
        frame = self._decode_frame(data)
        if frame.format.name != "yuv420p":
            raise CorruptStreamError(f"unexpected VVC pixel format {frame.format.name}")
        size = self._true_size(data) or (frame.width, frame.height)
        w, h = size
        if w > frame.width or h > frame.height:
            raise CorruptStreamError("VVC size SEI declares a picture larger than the stream")
        # crop first, then upsample with bpgdec's filters: the same RGB path as our BPG files
        y, cb, cr = (yuv.plane_array(p) for p in frame.planes)
        ch, cw = -(-h // 2), -(-w // 2)
        return yuv.yuv420_to_rgb(y[:h, :w], cb[:ch, :cw], cr[:ch, :cw])

    def info(self, data: bytes) -> StreamInfo:
        if not data or b"\x00\x00\x01" not in data[:4]:
            raise CorruptStreamError("not a VVC Annex-B stream")
        parsed = parse_sps(data)
        if parsed is None:  # constraint info present: let the decoder read the header
            frame = self._decode_frame(data)
            coded, fmt = (frame.width, frame.height), "420" if frame.format.name == "yuv420p" else frame.format.name
        else:
            coded, fmt = parsed[:2], _CHROMA_FORMATS[parsed[2]]
        w, h = self._true_size(data) or coded
        if w > coded[0] or h > coded[1]:
            raise CorruptStreamError("VVC size SEI declares a picture larger than the stream")
        return StreamInfo(self.name, w, h, fmt, 8, {"coded_size": list(coded)})
