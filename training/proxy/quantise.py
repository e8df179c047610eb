"""QP → quantiser step, and quantisation with a gradient.

- bpgenc's ``-q`` (our ``quality``) is x265's ``qp`` in constant-QP mode; x265's default
  ``ipratio`` 1.4 lowers the I-slice QP by round(6·log2 1.4) = 3, so every slice of a BPG
  picture is coded at ``QP_slice = q − 3`` (read back from the slice headers of our encoder's
  streams: PPS init_qp 26 + slice_qp_delta = q − 3 for q = 22, 29, 37, 46).
- HEVC's step size on orthonormal transform coefficients of 8-bit samples:
  ``Qstep = 2^((QP − 4)/6)`` (ITU-T H.265: the scaling lists and shifts are built so that QP 4
  is step 1 and every +6 doubles it).
- Chroma QP for 4:2:0 from the luma QP through H.265 Table 8-10 (no chroma offsets: x265's
  defaults, which our encoder keeps).

Quantisers, by name:

- ``"ste"``: straight-through. Forward the dead-zone rounding ``sign(u)·⌊|u| + offset⌋`` of
  ``u = c/Qstep``; backward the identity (the gradient of ``u``).
- ``"noise"``: additive uniform noise, ``u + U(−½, ½)`` (Ballé et al. 2017), a smooth stand-in
  for rounding in training.
- ``"hard"``: the dead-zone rounding without a gradient path of its own (evaluation).
"""

from __future__ import annotations

import torch

QUANTISERS = ("ste", "noise", "hard")
#: bpgenc -q → slice QP (x265 ipratio 1.4).
SLICE_QP_OFFSET = -3
_CHROMA_TABLE = (29, 30, 31, 32, 33, 33, 34, 34, 35, 35, 36, 36, 37, 37)  # qPi 30..43


def slice_qp(quality: torch.Tensor) -> torch.Tensor:
    """bpgenc's q (0..51) → the QP every slice is coded at."""
    return torch.clamp(quality + SLICE_QP_OFFSET, 0, 51)


def qstep(qp: torch.Tensor) -> torch.Tensor:
    """HEVC's quantiser step for QP (fractional QPs interpolate geometrically)."""
    return torch.pow(2.0, (qp - 4.0) / 6.0)


def chroma_qp(qp: torch.Tensor) -> torch.Tensor:
    """Luma QP → 4:2:0 chroma QP (H.265 Table 8-10), elementwise; fractional QPs interpolate."""
    table = torch.tensor([float(q) for q in range(30)] + [float(v) for v in _CHROMA_TABLE]
                         + [float(q - 6) for q in range(44, 58)], dtype=qp.dtype, device=qp.device)
    q = torch.clamp(qp, 0, 57)
    lo = torch.floor(q).long().clamp(max=56)
    frac = q - lo.to(q.dtype)
    return table[lo] + frac * (table[lo + 1] - table[lo])


def quantise(u: torch.Tensor, mode: str, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise ``u = coefficient / Qstep``; returns (levels used for reconstruction, magnitudes
    for the rate model). See the module docstring for the modes."""
    if mode == "noise":
        q = u + (torch.rand_like(u) - 0.5)
        return q, q.abs()
    hard = torch.sign(u) * torch.floor(u.abs() + offset)
    if mode == "hard":
        q = hard.detach()
        return q, q.abs()
    if mode != "ste":
        raise ValueError(f"unknown quantiser {mode!r}; choose one of {', '.join(QUANTISERS)}")
    mag = u.abs()
    # Forward: the rounded values; backward: the gradient of u (and of |u| for the rate), so
    # coefficients that round to zero still feel the rate's pull towards zero.
    return u + (hard - u).detach(), mag + (hard.abs() - mag).detach()
