"""Colour conversion and chroma resampling with bpgenc's conventions.

RGB ↔ YCbCr BT.601 full range (JPEG equations), 4:2:0 with centred (JPEG) chroma siting.
Downsampling uses bpgenc's 10-tap filter (2,−4,−8,17,57,57,17,−8,−4,2)/128, horizontally then
vertically, edges replicated. Upsampling uses the centred triangle filter (3/4, 1/4).
"""

from __future__ import annotations

import numpy as np

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
_DOWN_TAPS = np.array([2, -4, -8, 17, 57, 57, 17, -8, -4, 2], dtype=np.float32) / 128.0


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


def _up_axis_centred(plane: np.ndarray, axis: int, n: int) -> np.ndarray:
    p = np.pad(plane, [(1, 1) if a == axis else (0, 0) for a in range(2)], mode="edge")
    take = (lambda s: p[:, s]) if axis == 1 else (lambda s: p[s, :])
    mid = take(slice(1, -1))
    even = 0.75 * mid + 0.25 * take(slice(0, -2))
    odd = 0.75 * mid + 0.25 * take(slice(2, None))
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(plane.shape)
    shape[axis] *= 2
    out = out.reshape(shape)
    return out[:, :n] if axis == 1 else out[:n, :]


def _up_axis_cosited(plane: np.ndarray, axis: int, n: int) -> np.ndarray:
    p = np.pad(plane, [(0, 1) if a == axis else (0, 0) for a in range(2)], mode="edge")
    take = (lambda s: p[:, s]) if axis == 1 else (lambda s: p[s, :])
    even = take(slice(0, -1))
    odd = 0.5 * (even + take(slice(1, None)))
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(plane.shape)
    shape[axis] *= 2
    out = out.reshape(shape)
    return out[:, :n] if axis == 1 else out[:n, :]


def upsample(chroma: np.ndarray, height: int, width: int, sub_h: int, sub_w: int, centred: bool) -> np.ndarray:
    """Chroma plane (uint8 or float) → float32 height×width."""
    c = chroma.astype(np.float32)
    if sub_w == 2:
        c = (_up_axis_centred if centred else _up_axis_cosited)(c, 1, width)
    if sub_h == 2:
        c = _up_axis_centred(c, 0, height)
    return c[:height, :width]


_YCC2RGB = {
    # (Kr, Kb) per BPG colour space
    0: (0.299, 0.114),
    3: (0.2126, 0.0722),
    4: (0.2627, 0.0593),
}


def ycc_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, color_space: int, limited: bool) -> np.ndarray:
    """Full-resolution planes → H×W×3 uint8 RGB for BPG colour space `color_space`."""
    yf = y.astype(np.float32)
    cb = np.asarray(cb, np.float32)
    cr = np.asarray(cr, np.float32)
    if limited:
        yf = (yf - 16.0) * np.float32(255.0 / 219.0)
        cb = (cb - 128.0) * np.float32(255.0 / 224.0) + 128.0
        cr = (cr - 128.0) * np.float32(255.0 / 224.0) + 128.0
    if color_space == 1:  # RGB stored as G, B, R
        channels = [cr.copy(), yf, cb.copy()]
    elif color_space == 2:  # YCgCo: Y, Cg, Co
        cg = cb - np.float32(128)
        co = cr - np.float32(128)
        t = yf - cg
        channels = [t + co, yf + cg, t - co]
    else:
        kr, kb = _YCC2RGB[color_space]
        kg = 1.0 - kr - kb
        d = cb - np.float32(128)
        e = cr - np.float32(128)
        red = yf + np.float32(2 - 2 * kr) * e
        blue = yf + np.float32(2 - 2 * kb) * d
        green = yf - np.float32(kb * (2 - 2 * kb) / kg) * d
        green -= np.float32(kr * (2 - 2 * kr) / kg) * e
        channels = [red, green, blue]
    out = np.empty((*yf.shape, 3), np.uint8)
    for i, ch in enumerate(channels):
        ch += np.float32(0.5)  # round half up, then truncate on the uint8 cast
        np.clip(ch, 0, 255, out=ch)
        out[..., i] = ch
    return out
