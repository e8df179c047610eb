"""The colour path of our BPG encoder and decoder (shared/codecs/yuv.py) in torch, differentiable.

Encoder side, as bpgenc 0.9.8 computes it: RGB → YCbCr BT.601 full range (JPEG equations) in
floating point, then each chroma plane decimated ×2 with the 10-tap filter
(2, −4, −8, 17, 57, 57, 17, −8, −4, 2)/128 horizontally then vertically, centred siting, samples
beyond the edges replicated. Decoder side, as bpgdec 0.9.8 computes it, in floating point (no
fixed-point rounding): chroma ×2 with the 7-tap Lanczos pair (2, −6, 18, 57, −10, 4, −1)/64 and
its mirror, vertical then horizontal, then YCbCr → RGB. Planes are on the 0..255 scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shared.codecs.yuv import YCBCR_SPACES

KR, KB = YCBCR_SPACES[0]
KG = 1.0 - KR - KB
DOWN_TAPS = (2.0, -4.0, -8.0, 17.0, 57.0, 57.0, 17.0, -8.0, -4.0, 2.0)
UP_TAPS_A = (2.0, -6.0, 18.0, 57.0, -10.0, 4.0, -1.0)  # output sample above/left of a chroma sample
UP_TAPS_B = UP_TAPS_A[::-1]


def rgb_to_ycc(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N,3,H,W) RGB in [0,1] → Y, Cb, Cr (N,1,H,W) on the 0..255 scale, chroma centred on 128."""
    x = rgb * 255.0
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = r * KR + g * KG + b * KB
    cb = (b - y) * (0.5 / (1 - KB)) + 128.0
    cr = (r - y) * (0.5 / (1 - KR)) + 128.0
    return y, cb, cr


def ycc_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycc` (full-resolution planes, 0..255) → (N,3,H,W) RGB in [0,1], unclamped."""
    dcb, dcr = cb - 128.0, cr - 128.0
    r = y + 2 * (1 - KR) * dcr
    b = y + 2 * (1 - KB) * dcb
    g = y - (2 * KB * (1 - KB) / KG) * dcb - (2 * KR * (1 - KR) / KG) * dcr
    return torch.cat([r, g, b], dim=1) / 255.0


def _kernel(taps: tuple[float, ...], scale: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(taps, dtype=like.dtype, device=like.device) / scale


def _down_axis(p: torch.Tensor, dim: int) -> torch.Tensor:
    """Halve (N,1,H,W) along dim 3 (width) or 2 (height); output ⌈n/2⌉, as yuv._down_axis."""
    n = p.shape[dim]
    out_n = (n + 1) // 2
    right = 2 * out_n - n + 5
    k = _kernel(DOWN_TAPS, 128.0, p)
    if dim == 3:
        return F.conv2d(F.pad(p, (4, right, 0, 0), mode="replicate"), k.view(1, 1, 1, 10), stride=(1, 2))
    return F.conv2d(F.pad(p, (0, 0, 4, right), mode="replicate"), k.view(1, 1, 10, 1), stride=(2, 1))


def downsample_420(chroma: torch.Tensor) -> torch.Tensor:
    """(N,1,H,W) chroma → (N,1,⌈H/2⌉,⌈W/2⌉), horizontal pass then vertical (bpgenc's order)."""
    return _down_axis(_down_axis(chroma, 3), 2)


def _up_axis(c: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    m = c.shape[dim]
    ka, kb = _kernel(UP_TAPS_A, 64.0, c), _kernel(UP_TAPS_B, 64.0, c)
    if dim == 3:
        p = F.pad(c, (3, 3, 0, 0), mode="replicate")
        even, odd = F.conv2d(p, ka.view(1, 1, 1, 7)), F.conv2d(p, kb.view(1, 1, 1, 7))
        out = torch.stack([even, odd], dim=-1).reshape(*c.shape[:3], 2 * m)
        return out[..., :n]
    p = F.pad(c, (0, 0, 3, 3), mode="replicate")
    even, odd = F.conv2d(p, ka.view(1, 1, 7, 1)), F.conv2d(p, kb.view(1, 1, 7, 1))
    out = torch.stack([even, odd], dim=3).reshape(c.shape[0], c.shape[1], 2 * m, c.shape[3])
    return out[:, :, :n]


def upsample_420(chroma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N,1,⌈H/2⌉,⌈W/2⌉) chroma → (N,1,H,W): bpgdec's centred 4:2:0 upsampling, vertical first."""
    return _up_axis(_up_axis(chroma, height, 2), width, 3)
