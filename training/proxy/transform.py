"""Block transform coding pieces of the proxy: the orthonormal block DCT and HEVC-style intra
prediction of each block from its neighbours.

HEVC intra codes a block as prediction (from the row above and the column to the left) plus a
transformed residual; smooth areas and edges aligned with a direction cost almost nothing.
Without prediction a DCT proxy charges them for DC and low-frequency energy that HEVC never
spends bits on, and its bits track BPG's per image worse (docs/training.md has the measurement).
The prediction here is open-loop (neighbours from the source plane, not the reconstruction: the
proxy has no sequential decode loop) with four of HEVC's 35 modes: DC, planar, horizontal,
vertical (ITU-T H.265 §8.4.4.2.5, 8.4.4.2.6), formulas in floating point.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

#: Intra modes the proxy tries per block ("flat" = predict 128, i.e. no prediction).
INTRA_MODES = ("flat", "dc", "planar", "horizontal", "vertical")


@functools.lru_cache(maxsize=8)
def _dct_matrix_cpu(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64).view(-1, 1)
    i = torch.arange(n, dtype=torch.float64).view(1, -1)
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def dct_matrix(n: int, like: torch.Tensor) -> torch.Tensor:
    """The orthonormal DCT-II matrix C (n×n): coefficients = C · block · Cᵀ."""
    return _dct_matrix_cpu(n).to(dtype=like.dtype, device=like.device)


def to_blocks(plane: torch.Tensor, b: int) -> torch.Tensor:
    """(N,1,H,W) with H, W multiples of b → (N, H/b, W/b, b, b)."""
    n, _, h, w = plane.shape
    return plane.reshape(n, h // b, b, w // b, b).permute(0, 1, 3, 2, 4)


def from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    n, by, bx, b, _ = blocks.shape
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, 1, by * b, bx * b)


def dct2(blocks: torch.Tensor) -> torch.Tensor:
    c = dct_matrix(blocks.shape[-1], blocks)
    return c @ blocks @ c.T


def idct2(coeffs: torch.Tensor) -> torch.Tensor:
    c = dct_matrix(coeffs.shape[-1], coeffs)
    return c.T @ coeffs @ c


def frequency_index(b: int) -> torch.Tensor:
    """(b, b) u+v of each coefficient: 0 = DC, 2b−2 = highest."""
    r = torch.arange(b)
    return r.view(-1, 1) + r.view(1, -1)


def neighbours(plane: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each b×b block: the 2b samples above it (T, from the top-left corner rightwards) and
    the 2b samples left of it (L, downwards), from the source plane; samples beyond the picture
    repeat the edge (HEVC substitutes unavailable neighbours from the nearest available ones)."""
    h, w = plane.shape[-2:]
    p = F.pad(plane, (1, b, 1, b), mode="replicate")  # p[i+1, j+1] = plane[i, j]
    rows = p[:, 0, 0:h:b, 1:]  # the row above each block row: (N, H/b, W+b)
    top = rows.unfold(-1, 2 * b, b)  # (N, H/b, W/b, 2b)
    cols = p[:, 0, 1:, 0:w:b]  # the column left of each block column: (N, H+b, W/b)
    left = cols.unfold(1, 2 * b, b)  # (N, H/b, W/b, 2b)
    return top, left


def predictions(plane: torch.Tensor, b: int, modes: tuple[str, ...]) -> torch.Tensor:
    """(N, M, H/b, W/b, b, b): each mode's prediction of every block."""
    top, left = neighbours(plane, b)
    t, lft = top[..., :b], left[..., :b]
    x = torch.arange(b, dtype=plane.dtype, device=plane.device)
    out = []
    for mode in modes:
        if mode == "flat":
            pred = torch.full_like(t, 128.0).unsqueeze(-1).expand(*t.shape, b)
        elif mode == "dc":
            dc = (t.mean(-1) + lft.mean(-1)) / 2
            pred = dc[..., None, None].expand(*dc.shape, b, b)
        elif mode == "planar":
            tr, bl = top[..., b : b + 1], left[..., b : b + 1]  # top-right and bottom-left samples
            horiz = (b - 1 - x) * lft[..., :, None] + (x + 1) * tr[..., None, :]  # over (y, x)
            vert = (b - 1 - x)[:, None] * t[..., None, :] + (x + 1)[:, None] * bl[..., None, :]
            pred = (horiz + vert) / (2 * b)
        elif mode == "horizontal":
            pred = lft[..., :, None].expand(*lft.shape, b)
        elif mode == "vertical":
            pred = t[..., None, :].expand(*t.shape[:-1], b, b)
        else:
            raise ValueError(f"unknown intra mode {mode!r}; choose from {', '.join(INTRA_MODES)}")
        out.append(pred)
    return torch.stack(out, dim=1)
