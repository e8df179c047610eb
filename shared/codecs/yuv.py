"""YCbCr planes ↔ RGB with the reference BPG tools' arithmetic, shared by every codec that codes
4:2:0 pictures itself (BPG, VVC).

Encoding follows `bpgenc` 0.9.8: RGB → YCbCr BT.601 full range (JPEG equations) in floating point,
chroma decimated with the 10-tap filter (2, −4, −8, 17, 57, 57, 17, −8, −4, 2)/128 horizontally
then vertically (centred siting, edges replicated).

Decoding follows `bpgdec` 0.9.8 (8-bit output) to the last bit:

- chroma sited between luma samples (JPEG siting) is upsampled ×2 by the 7-tap Lanczos pair
  (2, −6, 18, 57, −10, 4, −1)/64 and its mirror; co-sited chroma (MPEG-2 "video" siting,
  horizontal only) by copying plus the 8-tap (−1, 4, −11, 40, 40, −11, 4, −1)/64; samples beyond
  the plane's edge repeat the edge sample;
- 4:2:0 runs the vertical pass first and keeps its 6 fractional bits (no rounding, no clamp), then
  the horizontal pass rounds by 2^11 and shifts by 12; 4:2:2 rounds by 32 and shifts by 6;
- YCbCr → RGB in 32-bit fixed point with 22 fractional bits: coefficients ``lrint(k · M)``,
  ``M = 2^22`` (full range) or ``255·2^22/224`` for limited-range chroma and ``255·2^22/219`` for
  limited-range luma (offset 16); YCgCo and RGB planes use the luma scale only. Sums wrap at
  32 bits exactly as the C code's ``int`` arithmetic does (only reachable with out-of-range
  limited-range samples).

The fixed-point maps are tabulated once per colour space and range, so the per-pixel work is
table look-ups and one add.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

#: (Kr, Kb) of the YCbCr colour spaces, by BPG colour-space code (bpg_spec).
YCBCR_SPACES = {0: (0.299, 0.114), 3: (0.2126, 0.0722), 4: (0.2627, 0.0593)}
RGB_SPACE, YCGCO_SPACE = 1, 2

_KR, _KB = YCBCR_SPACES[0]
_KG = 1.0 - _KR - _KB
_DOWN_TAPS = np.array([2, -4, -8, 17, 57, 57, 17, -8, -4, 2], dtype=np.float32) / 128.0
_SHIFT = 22  # bpgdec: 30 − output bit depth


def plane_array(plane: Any) -> np.ndarray:
    """A libav picture plane as a (rows, line_size) uint8 view, without copying."""
    return np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)


# -- encoder side (bpgenc) ------------------------------------------------------------------------

def rgb_to_ycc(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H×W×3 uint8 → (Y, Cb, Cr) float32 planes, chroma centred on 128, unrounded.

    Planar in-place arithmetic: ~5× faster than a (H·W×3)@(3×3) matmul on the interleaved array.
    """
    r, g, b = np.moveaxis(rgb, 2, 0).astype(np.float32)
    y = r * np.float32(_KR)
    y += g * np.float32(_KG)
    y += b * np.float32(_KB)
    cb = b - y
    cb *= np.float32(0.5 / (1 - _KB))
    cb += np.float32(128)
    cr = r - y
    cr *= np.float32(0.5 / (1 - _KR))
    cr += np.float32(128)
    return y, cb, cr


def to_u8(plane: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(plane), 0, 255).astype(np.uint8)


def _down_axis(plane: np.ndarray, axis: int) -> np.ndarray:
    n = plane.shape[axis]
    out_n = (n + 1) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (4, 2 * out_n - n + 5)
    p = np.pad(plane, pad, mode="edge")

    def tap(k: int) -> np.ndarray:
        sl = slice(k, k + 2 * out_n, 2)
        return p[:, sl] if axis == 1 else p[sl, :]

    # the filter is symmetric: pair taps k and 9-k, one multiply per pair
    acc = tap(4) + tap(5)
    acc *= _DOWN_TAPS[4]
    for k in range(4):
        pair = tap(k) + tap(9 - k)
        pair *= _DOWN_TAPS[k]
        acc += pair
    return acc


def downsample_420(chroma: np.ndarray) -> np.ndarray:
    """Halve a float chroma plane in both directions (centred siting)."""
    return _down_axis(_down_axis(chroma, 1), 0)


def rgb_to_yuv420(rgb: np.ndarray) -> list[np.ndarray]:
    """H×W×3 uint8 → [Y (H×W), Cb, Cr (⌈H/2⌉×⌈W/2⌉)] uint8 planes, as bpgenc prepares them."""
    y, cb, cr = rgb_to_ycc(rgb)
    return [to_u8(y), to_u8(downsample_420(cb)), to_u8(downsample_420(cr))]


# -- decoder side (bpgdec) ------------------------------------------------------------------------

_HALF_A = (2, -6, 18, 57, -10, 4, -1)  # output sample above / left of a centred chroma sample
_HALF_B = _HALF_A[::-1]  # below / right
_COSITED = (-1, 4, -11, 40, 40, -11, 4, -1)


def _taps(p: np.ndarray, weights: tuple[int, ...], n: int, axis: int) -> np.ndarray:
    """Σ_k weights[k] · p[k : k + n] along `axis`, in int32."""
    def view(k: int) -> np.ndarray:
        return p[:, k : k + n] if axis == 1 else p[k : k + n, :]

    acc = view(0) * np.int32(weights[0])
    for k, wk in enumerate(weights[1:], 1):
        if wk == 1:
            acc += view(k)
        elif wk == -1:
            acc -= view(k)
        else:
            acc += view(k) * np.int32(wk)
    return acc


def _interleave(even: np.ndarray, odd: np.ndarray, n: int, axis: int) -> np.ndarray:
    shape = list(even.shape)
    shape[axis] *= 2
    out = np.empty(shape, np.int32)
    if axis == 1:
        out[:, 0::2], out[:, 1::2] = even, odd
        return out[:, :n]
    out[0::2], out[1::2] = even, odd
    return out[:n]


def _upsample_centred(c: np.ndarray, n: int, axis: int) -> np.ndarray:
    """×2 along `axis` to length n with the 7-tap pair; unscaled (6 fractional bits added)."""
    m = c.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (3, 3)
    p = np.pad(c, pad, mode="edge")
    return _interleave(_taps(p, _HALF_A, m, axis), _taps(p, _HALF_B, m, axis), n, axis)


def _upsample_cosited_h(c: np.ndarray, n: int) -> np.ndarray:
    m = c.shape[1]
    p = np.pad(c, ((0, 0), (3, 4)), mode="edge")
    return _interleave(c * np.int32(64), _taps(p, _COSITED, m, 1), n, 1)


def upsample_chroma(chroma: np.ndarray, height: int, width: int, sub_h: int, sub_w: int,
                    centred: bool = True) -> np.ndarray:
    """A decoded uint8 chroma plane → uint8 height×width, as bpgdec computes it.

    `sub_h`/`sub_w` are the subsampling factors (1 or 2); `centred` is the horizontal siting
    (vertical siting of 4:2:0 is always centred in BPG).
    """
    c = np.asarray(chroma)
    if sub_w == 1 and sub_h == 1:
        return np.ascontiguousarray(c[:height, :width])
    if sub_w != 2:
        raise ValueError(f"unsupported chroma subsampling {sub_h}x{sub_w}")
    c = c.astype(np.int32)
    if sub_h == 2:
        c = _upsample_centred(c, height, 0)  # ×64, kept unrounded
        shift = 12
    else:
        shift = 6
    c = _upsample_centred(c, width, 1) if centred else _upsample_cosited_h(c, width)
    c += np.int32(1 << (shift - 1))
    c >>= shift
    return np.clip(c, 0, 255).astype(np.uint8)


def _c_int32(values: np.ndarray) -> np.ndarray:
    """int64 → int32 with two's-complement wrap, as C's 32-bit ``int`` arithmetic."""
    return ((values + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _clamp_shift(acc: np.ndarray) -> np.ndarray:
    return np.clip(_c_int32(acc) >> _SHIFT, 0, 255).astype(np.uint8)


def _luma_scale(limited: bool) -> tuple[int, int]:
    """bpgdec's luma multiplier and offset (rounding included) for 8-bit output."""
    y_one = int(np.rint(float(255 << _SHIFT) / (219 if limited else 255)))
    return y_one, (1 << (_SHIFT - 1)) - (16 * y_one if limited else 0)


@functools.lru_cache(maxsize=16)
def _ycbcr_tables(color_space: int, limited: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """bpgdec's fixed-point maps as look-up tables: red and blue indexed by (Y << 8 | chroma), the
    luma term by Y and green's chroma term by (Cb << 8 | Cr)."""
    mult_c = float(255 << _SHIFT) / (224 if limited else 255)
    kr, kb = YCBCR_SPACES[color_space]
    c_r_cr, c_g_cb, c_g_cr, c_b_cb = (int(np.rint(f * mult_c)) for f in (
        2 * (1 - kr), 2 * kb * (1 - kb) / (1 - kb - kr), 2 * kr * (1 - kr) / (1 - kb - kr), 2 * (1 - kb)))
    y_one, y_offset = _luma_scale(limited)
    v = np.arange(256, dtype=np.int64)
    y_term = (v * y_one + y_offset)[:, None]
    d = v - 128
    red = _clamp_shift(y_term + c_r_cr * d[None, :]).ravel()
    blue = _clamp_shift(y_term + c_b_cb * d[None, :]).ravel()
    green_c = _c_int32(-(c_g_cb * d)[:, None] - (c_g_cr * d)[None, :]).ravel()
    return red, blue, green_c, _c_int32(y_term.ravel())


@functools.lru_cache(maxsize=2)
def _luma_table(limited: bool) -> np.ndarray:
    y_one, y_offset = _luma_scale(limited)
    return _clamp_shift(np.arange(256, dtype=np.int64) * y_one + y_offset)


def _index(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    idx = a.astype(np.intp)
    idx <<= 8
    idx |= b
    return idx


@functools.lru_cache(maxsize=8)
def _full_range_deltas(color_space: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full range has luma scale exactly 2^22, so ``(Y·2^22 + t) >> 22 = Y + (t >> 22)`` and every
    channel is Y plus a chroma-only offset (no 32-bit wrap is reachable there): tabulate it."""
    mult = float(1 << _SHIFT)
    kr, kb = YCBCR_SPACES[color_space]
    c_r_cr, c_g_cb, c_g_cr, c_b_cb = (int(np.rint(f * mult)) for f in (
        2 * (1 - kr), 2 * kb * (1 - kb) / (1 - kb - kr), 2 * kr * (1 - kr) / (1 - kb - kr), 2 * (1 - kb)))
    d = np.arange(256, dtype=np.int64) - 128
    rnd = 1 << (_SHIFT - 1)
    red = ((c_r_cr * d + rnd) >> _SHIFT).astype(np.int16)
    blue = ((c_b_cb * d + rnd) >> _SHIFT).astype(np.int16)
    green = ((rnd - (c_g_cb * d)[:, None] - (c_g_cr * d)[None, :]) >> _SHIFT).astype(np.int16).ravel()
    return red, blue, green


def ycc_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, color_space: int = 0,
               limited: bool = False) -> np.ndarray:
    """Full-resolution uint8 planes → H×W×3 uint8 RGB for BPG colour space `color_space`."""
    out = np.empty((*y.shape, 3), np.uint8)
    if color_space in YCBCR_SPACES and not limited:
        red, blue, green = _full_range_deltas(color_space)
        y16 = y.astype(np.int16)
        green_idx = cb.astype(np.uint16)
        green_idx <<= 8
        green_idx |= cr
        for i, delta in enumerate((red[cr], green[green_idx], blue[cb])):
            delta += y16
            out[..., i] = np.clip(delta, 0, 255, out=delta)
    elif color_space in YCBCR_SPACES:
        red, blue, green_c, y_term = _ycbcr_tables(color_space, limited)
        out[..., 0] = red[_index(y, cr)]
        out[..., 2] = blue[_index(y, cb)]
        g = y_term[y]
        g += green_c[_index(cb, cr)]
        g >>= _SHIFT
        out[..., 1] = np.clip(g, 0, 255)
    elif color_space == RGB_SPACE:  # stored as G, B, R
        for i, p in enumerate((cr, y, cb)):
            out[..., i] = _luma_table(True)[p] if limited else p
    elif color_space == YCGCO_SPACE:  # exact integer reconstruction, then the luma scale
        y_one, y_offset = _luma_scale(limited)
        yi, cg, co = y.astype(np.int64), cb.astype(np.int64) - 128, cr.astype(np.int64) - 128
        for i, p in enumerate((yi - cg + co, yi + cg, yi - cg - co)):
            out[..., i] = _clamp_shift(p * y_one + y_offset)
    else:
        raise ValueError(f"unknown BPG colour space {color_space}")
    return out


def grey_to_rgb(y: np.ndarray, limited: bool = False) -> np.ndarray:
    """A grey (luma-only) picture → H×W×3 RGB, as bpgdec writes it."""
    g = _luma_table(True)[y] if limited else np.asarray(y)
    return np.repeat(g[:, :, None], 3, axis=2)


def yuv420_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """bpgenc-style 4:2:0 planes (full-range BT.601, centred chroma) → RGB, as bpgdec decodes."""
    h, w = y.shape
    return ycc_to_rgb(y, upsample_chroma(cb, h, w, 2, 2), upsample_chroma(cr, h, w, 2, 2))
