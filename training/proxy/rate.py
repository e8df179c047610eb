"""The proxy's rate model: bits of a BPG file from statistics of the proxy's quantised levels.

Per image, for luma and for chroma separately and for five frequency bands of the block DCT
(DC; then u+v up to 1/7, 2/7, 4/7 and all of its range), two sums over the quantised magnitudes
m = |level|: ``Σ log2(1 + m)`` (the cost of coding a level's magnitude grows with its log, as
CABAC's Exp-Golomb remainder does) and ``Σ min(m, 1)`` (the number of significant coefficients:
significance flags and sign bits); per plane type the number of blocks with any level at all
(coded-block flags); the picture's luma pixel count in thousands (mode and partition syntax); and 1 (the BPG
header, parameter sets, slice header). Bits = features · coefficients, the coefficients fitted
per QP by non-negative least squares on relative error against the real codec's file sizes
(``python -m training.proxy.fit_rate``); non-negative so the rate never falls when a level grows.
Between fitted QPs the coefficients interpolate linearly in QP; outside they clamp.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

PLANE_TYPES = ("luma", "chroma")
#: Upper edges of the frequency bands as a fraction of the largest u+v (2b−2); band 0 is DC.
BAND_EDGES = (0.0, 1 / 7, 2 / 7, 4 / 7, 1.0)
DEFAULT_PARAMS = Path(__file__).with_name("bpg_proxy_params.json")


def feature_names() -> list[str]:
    names = []
    for t in PLANE_TYPES:
        names += [f"{t}_log_band{k}" for k in range(len(BAND_EDGES))]
        names += [f"{t}_nonzero_band{k}" for k in range(len(BAND_EDGES))]
        names.append(f"{t}_coded_blocks")
    return [*names, "kilopixels", "constant"]


def band_masks(b: int, like: torch.Tensor) -> torch.Tensor:
    """(bands, b, b) 0/1 masks of the frequency bands of a b×b DCT."""
    r = torch.arange(b, dtype=torch.float64)
    e = (r.view(-1, 1) + r.view(1, -1)) / max(2 * b - 2, 1)
    masks, lo = [], -1.0
    for hi in BAND_EDGES:
        masks.append((e > lo) & (e <= hi))
        lo = hi
    return torch.stack(masks).to(dtype=like.dtype, device=like.device)


def plane_features(mag: torch.Tensor) -> torch.Tensor:
    """Quantised magnitudes (N, by, bx, b, b) of one plane → (N, 2·bands + 1) features."""
    masks = band_masks(mag.shape[-1], mag)
    log_m = torch.log2(1 + mag)
    nz = torch.clamp(mag, max=1.0)
    log_f = torch.einsum("nyxij,kij->nk", log_m, masks)
    nz_f = torch.einsum("nyxij,kij->nk", nz, masks)
    coded = torch.clamp(mag.sum((-1, -2)), max=1.0).sum((1, 2))
    return torch.cat([log_f, nz_f, coded[:, None]], dim=1)


@dataclass
class ProxyParams:
    """Everything that defines a fitted proxy; stored as JSON beside this module."""

    block_size: int = 8
    modes: tuple[str, ...] = ("flat", "dc", "planar", "horizontal", "vertical")
    deadzone_offset: float = 0.5  # levels = ⌊|u| + offset⌋; 0.5 = plain rounding
    qualities: list[float] = field(default_factory=list)  # bpgenc q of each coefficient row
    coefficients: list[list[float]] = field(default_factory=list)  # one row of feature weights per q
    features: list[str] = field(default_factory=feature_names)
    fit: dict[str, object] = field(default_factory=dict)  # provenance: codec settings, images, errors

    def save(self, path: Path) -> None:
        d = asdict(self)
        d["modes"] = list(self.modes)
        path.write_text(json.dumps(d, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | None = None) -> ProxyParams:
        d = json.loads((path or DEFAULT_PARAMS).read_text())
        d["modes"] = tuple(d["modes"])
        p = cls(**d)
        if p.features != feature_names():
            raise ValueError(f"{path}: feature list does not match this proxy's (refit it)")
        return p


class RateModel(torch.nn.Module):
    """Features → bits, with per-QP coefficients interpolated linearly in q."""

    def __init__(self, qualities: list[float], coefficients: list[list[float]]) -> None:
        super().__init__()
        if not qualities or len(qualities) != len(coefficients):
            raise ValueError("the rate model needs one coefficient row per fitted quality")
        self.register_buffer("qualities", torch.tensor(qualities, dtype=torch.float32))
        self.register_buffer("coefficients", torch.tensor(coefficients, dtype=torch.float32))

    def coefficients_at(self, quality: torch.Tensor) -> torch.Tensor:
        """(N,) q → (N, F) coefficient rows."""
        qs: torch.Tensor = self.qualities  # type: ignore[assignment]
        cs: torch.Tensor = self.coefficients  # type: ignore[assignment]
        q = torch.clamp(quality.to(qs.dtype), qs[0], qs[-1])
        hi = torch.searchsorted(qs, q).clamp(1, len(qs) - 1)
        lo = hi - 1
        w = ((q - qs[lo]) / (qs[hi] - qs[lo])).unsqueeze(1)
        return cs[lo] * (1 - w) + cs[hi] * w

    def forward(self, features: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return (features * self.coefficients_at(quality).to(features.dtype)).sum(1)
