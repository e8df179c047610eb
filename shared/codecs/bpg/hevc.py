"""HEVC parameter sets for BPG: the compact SPS ("hevc_header") and the VPS+SPS rebuilt from it.

BPG drops the VPS and SPS that the encoder wrote and keeps only the SPS fields an intra
picture's decoding depends on. A decoder rebuilds a standard VPS+SPS from those fields plus
the picture size, chroma format and bit depth in the BPG header (bpg_spec, "hevc_header").
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.codecs.bitstream import BitReader, BitWriter, escape_rbsp, unescape_rbsp
from shared.codecs.errors import CorruptStreamError, UnsupportedFeatureError

NAL_VPS, NAL_SPS, NAL_PPS = 32, 33, 34
START_CODE4 = b"\x00\x00\x00\x01"

# range-extension flags the BPG format forbids (bit 8 is the first flag read).
_FORBIDDEN_RANGE_FLAGS = (1 << 5) | (1 << 4) | (1 << 2) | (1 << 0)


@dataclass(frozen=True)
class PcmParams:
    bit_depth_luma_minus1: int
    bit_depth_chroma_minus1: int
    log2_min_pcm_cb_minus3: int
    log2_diff_max_min_pcm_cb: int
    loop_filter_disabled: bool


@dataclass(frozen=True)
class CompactSps:
    """The SPS fields BPG stores; everything else is fixed by the format."""

    log2_min_cb: int
    log2_diff_max_min_cb: int
    log2_min_tb: int
    log2_diff_max_min_tb: int
    max_transform_hierarchy_depth_intra: int
    sao_enabled: bool
    pcm: PcmParams | None
    strong_intra_smoothing: bool
    extension_present: bool = False
    range_extension: bool = False
    range_extension_flags: int = 0

    # -- the BPG hevc_header body ------------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = BitWriter()
        w.ue(self.log2_min_cb - 3)
        w.ue(self.log2_diff_max_min_cb)
        w.ue(self.log2_min_tb - 2)
        w.ue(self.log2_diff_max_min_tb)
        w.ue(self.max_transform_hierarchy_depth_intra)
        w.flag(self.sao_enabled)
        w.flag(self.pcm is not None)
        if self.pcm is not None:
            p = self.pcm
            w.u(4, p.bit_depth_luma_minus1)
            w.u(4, p.bit_depth_chroma_minus1)
            w.ue(p.log2_min_pcm_cb_minus3)
            w.ue(p.log2_diff_max_min_pcm_cb)
            w.flag(p.loop_filter_disabled)
        w.flag(self.strong_intra_smoothing)
        w.flag(self.extension_present)
        if self.extension_present:
            w.flag(self.range_extension)
            w.u(7, 0)
            if self.range_extension:
                w.u(9, self.range_extension_flags)
        return w.align_zero()

    @classmethod
    def from_bytes(cls, body: bytes) -> CompactSps:
        r = BitReader(body, "BPG hevc_header")
        log2_min_cb = r.ue() + 3
        diff_cb = r.ue()
        log2_min_tb = r.ue() + 2
        diff_tb = r.ue()
        depth = r.ue()
        sao = r.flag()
        pcm = _read_pcm(r) if r.flag() else None
        strong = r.flag()
        ext = r.flag()
        rext = False
        rflags = 0
        if ext:
            rext = r.flag()
            if r.u(7) != 0:
                raise UnsupportedFeatureError("BPG hevc_header uses SPS extensions other than range")
            if rext:
                rflags = r.u(9)
        sps = cls(log2_min_cb, diff_cb, log2_min_tb, diff_tb, depth, sao, pcm, strong, ext, rext, rflags)
        sps.validate()
        return sps

    def validate(self) -> None:
        """Reject values no conforming HEVC SPS can hold (H.265 7.4.3.2)."""
        max_cb = self.log2_min_cb + self.log2_diff_max_min_cb
        max_tb = self.log2_min_tb + self.log2_diff_max_min_tb
        if not (3 <= self.log2_min_cb <= 6 and 4 <= max_cb <= 6):
            raise CorruptStreamError(f"invalid coding block sizes in hevc_header (min 2^{self.log2_min_cb})")
        if not (2 <= self.log2_min_tb < self.log2_min_cb and max_tb <= min(max_cb, 5)):
            raise CorruptStreamError("invalid transform block sizes in hevc_header")
        if self.max_transform_hierarchy_depth_intra > max_cb - self.log2_min_tb:
            raise CorruptStreamError("invalid transform hierarchy depth in hevc_header")
        if self.range_extension_flags & _FORBIDDEN_RANGE_FLAGS:
            raise UnsupportedFeatureError(
                f"hevc_header uses unsupported range extensions (0x{self.range_extension_flags:x})"
            )
        if self.pcm is not None and (
            self.pcm.log2_min_pcm_cb_minus3 + self.pcm.log2_diff_max_min_pcm_cb > 2
        ):
            raise CorruptStreamError("invalid PCM block sizes in hevc_header")

    # -- from an encoder's SPS -----------------------------------------------------------------
    @classmethod
    def from_sps_nal(cls, nal: bytes) -> CompactSps:
        """Parse an SPS NAL (2-byte header included, escaped) as an HEVC encoder wrote it."""
        r = BitReader(unescape_rbsp(nal), "HEVC SPS")
        r.u(16)  # NAL unit header
        r.u(4)  # sps_video_parameter_set_id
        if r.u(3) != 0:
            raise UnsupportedFeatureError("SPS with sub-layers cannot be stored in BPG")
        r.u(1)
        _skip_profile_tier_level(r)
        r.ue()  # sps id
        if r.ue() == 3:  # chroma_format_idc
            r.u(1)
        r.ue()
        r.ue()
        if r.flag():  # conformance window
            for _ in range(4):
                r.ue()
        r.ue()
        r.ue()  # bit depths
        if r.ue() + 4 != 8:
            raise UnsupportedFeatureError("BPG needs log2_max_pic_order_cnt_lsb = 8")
        r.u(1)
        for _ in range(3):
            r.ue()
        log2_min_cb = r.ue() + 3
        diff_cb = r.ue()
        log2_min_tb = r.ue() + 2
        diff_tb = r.ue()
        depth_inter = r.ue()
        depth_intra = r.ue()
        if depth_inter != depth_intra:
            raise UnsupportedFeatureError("BPG needs equal inter and intra transform hierarchy depths")
        if r.flag():
            raise UnsupportedFeatureError("BPG does not store scaling lists")
        r.u(1)  # amp: irrelevant for intra pictures; the decoder sets it
        sao = r.flag()
        pcm = _read_pcm(r) if r.flag() else None
        if r.ue() != 0:
            raise UnsupportedFeatureError("BPG needs num_short_term_ref_pic_sets = 0")
        if r.flag():
            raise UnsupportedFeatureError("BPG needs long_term_ref_pics_present_flag = 0")
        r.u(1)  # temporal MVP: irrelevant for intra pictures
        strong = r.flag()
        if r.flag():
            _skip_vui(r)
        ext = r.flag()
        rext = False
        rflags = 0
        if ext:
            rext = r.flag()
            if r.u(7) != 0:
                raise UnsupportedFeatureError("SPS uses extensions BPG cannot store")
            if rext:
                rflags = r.u(9)
        sps = cls(log2_min_cb, diff_cb, log2_min_tb, diff_tb, depth_intra, sao, pcm, strong, ext, rext, rflags)
        sps.validate()
        return sps

    # -- rebuild standard parameter sets ------------------------------------------------------
    def parameter_sets(self, width: int, height: int, chroma_format_idc: int, bit_depth: int) -> bytes:
        """A standard VPS + SPS (Annex-B, 4-byte start codes) for a picture of this size."""
        return START_CODE4 + _vps(chroma_format_idc, bit_depth) + START_CODE4 + self._sps(
            width, height, chroma_format_idc, bit_depth
        )

    def _sps(self, width: int, height: int, chroma_format_idc: int, bit_depth: int) -> bytes:
        cb = 1 << self.log2_min_cb
        coded_w = -(-width // cb) * cb
        coded_h = -(-height // cb) * cb
        sub_w = 2 if chroma_format_idc in (1, 2) else 1
        sub_h = 2 if chroma_format_idc == 1 else 1
        w = BitWriter()
        w.u(16, NAL_SPS << 9 | 1)
        w.u(4, 0)  # vps id
        w.u(3, 0)  # max_sub_layers_minus1
        w.u(1, 1)  # temporal_id_nesting
        _write_profile_tier_level(w, chroma_format_idc, bit_depth)
        w.ue(0)  # sps id
        w.ue(chroma_format_idc)
        if chroma_format_idc == 3:
            w.u(1, 0)
        w.ue(coded_w)
        w.ue(coded_h)
        right = (coded_w - width) // sub_w
        bottom = (coded_h - height) // sub_h
        w.flag(bool(right or bottom))
        if right or bottom:
            w.ue(0)
            w.ue(right)
            w.ue(0)
            w.ue(bottom)
        w.ue(bit_depth - 8)
        w.ue(bit_depth - 8)
        w.ue(8 - 4)  # log2_max_pic_order_cnt_lsb = 8
        w.u(1, 1)  # sub_layer_ordering_info_present
        w.ue(0)
        w.ue(0)
        w.ue(0)
        w.ue(self.log2_min_cb - 3)
        w.ue(self.log2_diff_max_min_cb)
        w.ue(self.log2_min_tb - 2)
        w.ue(self.log2_diff_max_min_tb)
        w.ue(self.max_transform_hierarchy_depth_intra)  # inter = intra
        w.ue(self.max_transform_hierarchy_depth_intra)
        w.u(1, 0)  # scaling lists
        w.u(1, 1)  # amp
        w.flag(self.sao_enabled)
        w.flag(self.pcm is not None)
        if self.pcm is not None:
            p = self.pcm
            w.u(4, p.bit_depth_luma_minus1)
            w.u(4, p.bit_depth_chroma_minus1)
            w.ue(p.log2_min_pcm_cb_minus3)
            w.ue(p.log2_diff_max_min_pcm_cb)
            w.flag(p.loop_filter_disabled)
        w.ue(0)  # short-term RPS
        w.u(1, 0)  # long-term refs
        w.u(1, 1)  # temporal MVP
        w.flag(self.strong_intra_smoothing)
        w.u(1, 0)  # no VUI
        w.flag(self.extension_present)
        if self.extension_present:
            w.flag(self.range_extension)
            w.u(7, 0)
            if self.range_extension:
                w.u(9, self.range_extension_flags)
        return escape_rbsp(w.rbsp_trailing())


def _profile_idc(chroma_format_idc: int, bit_depth: int) -> int:
    return 1 if chroma_format_idc == 1 and bit_depth == 8 else 4  # Main, else format range ext.


def _write_profile_tier_level(w: BitWriter, chroma_format_idc: int, bit_depth: int) -> None:
    idc = _profile_idc(chroma_format_idc, bit_depth)
    w.u(2, 0)
    w.u(1, 0)
    w.u(5, idc)
    w.u(32, 1 << (31 - idc))
    w.u(4, 0b1001)  # progressive, not interlaced, no packing constraint, frame only
    w.u(32, 0)
    w.u(12, 0)  # 44 reserved bits in all
    w.u(8, 186)  # level 6.2: no size limit a still picture could hit


def _vps(chroma_format_idc: int, bit_depth: int) -> bytes:
    w = BitWriter()
    w.u(16, NAL_VPS << 9 | 1)
    w.u(4, 0)  # vps id
    w.u(1, 1)  # base layer internal
    w.u(1, 1)  # base layer available
    w.u(6, 0)  # max layers - 1
    w.u(3, 0)  # max sub layers - 1
    w.u(1, 1)  # temporal id nesting
    w.u(16, 0xFFFF)
    _write_profile_tier_level(w, chroma_format_idc, bit_depth)
    w.u(1, 1)  # sub-layer ordering info present
    w.ue(0)
    w.ue(0)
    w.ue(0)
    w.u(6, 0)  # max layer id
    w.ue(0)  # num layer sets - 1
    w.u(1, 0)  # timing info
    w.u(1, 0)  # extension
    return escape_rbsp(w.rbsp_trailing())


def _skip_profile_tier_level(r: BitReader) -> None:
    r.u(8)  # profile space, tier, profile idc
    r.u(32)
    r.u(4)
    r.u(32)
    r.u(12)
    r.u(8)


def _read_pcm(r: BitReader) -> PcmParams:
    return PcmParams(r.u(4), r.u(4), r.ue(), r.ue(), r.flag())


def _skip_vui(r: BitReader) -> None:
    if r.flag() and r.u(8) == 255:  # aspect ratio
        r.u(32)
    if r.flag():  # overscan
        r.u(1)
    if r.flag():  # video signal type
        r.u(4)
        if r.flag():
            r.u(24)
    if r.flag():  # chroma location
        r.ue()
        r.ue()
    r.u(3)  # neutral chroma, field seq, frame field info
    if r.flag():  # default display window
        for _ in range(4):
            r.ue()
    if r.flag():  # timing
        r.u(32)
        r.u(32)
        if r.flag():
            r.ue()
        if r.flag():
            raise UnsupportedFeatureError("SPS carries HRD parameters, which BPG cannot store")
    if r.flag():  # bitstream restriction
        r.u(3)
        for _ in range(5):
            r.ue()
