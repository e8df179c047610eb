"""Colour conversion and chroma resampling with bpgenc's conventions.

RGB ↔ YCbCr BT.601 full range (JPEG equations), 4:2:0 with centred (JPEG) chroma siting.
Downsampling uses bpgenc's 10-tap filter (2,−4,−8,17,57,57,17,−8,−4,2)/128, horizontally then
vertically, edges replicated. Upsampling uses the centred triangle filter (3/4, 1/4).
"""

from __future__ import annotations

import numpy as np

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
_RGB2YCC = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / (2 * (1 - _KB)), -_KG / (2 * (1 - _KB)), 0.5],
        [0.5, -_KG / (2 * (1 - _KR)), -_KB / (2 * (1 - _KR))],
    ],
    dtype=np.float32,
)
_DOWN_TAPS = np.array([2, -4, -8, 17, 57, 57, 17, -8, -4, 2], dtype=np.float32) / 128.0


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 → 3×H×W float32 (Y, Cb, Cr) with chroma centred on 128, unrounded."""
    flat = rgb.reshape(-1, 3).astype(np.float32)
    ycc = (flat @ _RGB2YCC.T).T.reshape(3, *rgb.shape[:2])
    ycc[1:] += 128.0
    return ycc


def to_u8(plane: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(plane), 0, 255).astype(np.uint8)


def _down_axis(plane: np.ndarray, axis: int) -> np.ndarray:
    n = plane.shape[axis]
    out_n = (n + 1) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (4, 2 * out_n - n + 5)
    p = np.pad(plane, pad, mode="edge")
    acc = np.zeros(tuple(out_n if a == axis else plane.shape[a] for a in range(2)), np.float32)
    for k, tap in enumerate(_DOWN_TAPS):
        sl = slice(k, k + 2 * out_n, 2)
        acc += tap * (p[:, sl] if axis == 1 else p[sl, :])
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
    y = y.astype(np.float32)
    if limited:
        y = (y - 16.0) * (255.0 / 219.0)
        cb = (cb - 128.0) * (255.0 / 224.0) + 128.0
        cr = (cr - 128.0) * (255.0 / 224.0) + 128.0
    if color_space == 1:  # RGB stored as G, B, R
        rgb = np.stack([cr, y, cb], axis=-1)
    elif color_space == 2:  # YCgCo: Y, Cg, Co
        cg = cb - 128.0
        co = cr - 128.0
        t = y - cg
        rgb = np.stack([t + co, y + cg, t - co], axis=-1)
    else:
        kr, kb = _YCC2RGB[color_space]
        kg = 1.0 - kr - kb
        d = cb - 128.0
        e = cr - 128.0
        r = y + (2 - 2 * kr) * e
        b = y + (2 - 2 * kb) * d
        g = y - (kb * (2 - 2 * kb) * d + kr * (2 - 2 * kr) * e) / kg
        rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
