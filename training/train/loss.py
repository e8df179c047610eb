"""The rate–distortion loss of NPP training (Lu et al., TCSVT 2024, eq. 1), with λ per QP.

Per image i coded at bpgenc quality q_i::

    L_i = (R_i + λ(q_i) · D_i + β · P_i) / R_ref(q_i)        (the division only if ``normalise``)

- R: bits per pixel of the coded image (the real codec's through the straight-through layer);
- D: the frozen task model's distortion on the decoded image — ``"kl"``: KL(pristine prediction ‖
  prediction on X̂), label-free, so any folder of images can train; ``"ce"``: cross-entropy with labels;
- P: MSE(X̄, X) on [0, 1] (β = 0.5 in the paper);
- λ(q) = −ΔR/ΔD, the plain codec's own local exchange rate between bits and distortion at q,
  measured on its rate–distortion points (:func:`codec_slopes`). An NPP that only slides along
  the codec's curve (blurring: fewer bits, more distortion, at the codec's own rate) then gains
  nothing to first order; only moving the curve lowers the loss;
- R_ref(q): the plain codec's bpp at q. Dividing by it makes every QP count by its *relative*
  rate change (d ln R), as a BD-rate does, instead of letting low-QP images (many bits) dominate.
  The division is a per-QP constant, so it keeps the slope argument above intact.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.tasks import TaskModel

DISTORTIONS = ("kl", "ce")


class LossConfigError(ValueError):
    """A λ table or sweep that cannot define the loss."""


@dataclass(frozen=True)
class RatePoint:
    quality: float
    bpp: float
    distortion: float


def codec_slopes(points: Sequence[RatePoint]) -> list[tuple[float, float]]:
    """(q, −ΔR/ΔD) at each point: central differences inside, one-sided at the ends.

    Needs ≥ 2 points whose rate falls and distortion rises strictly with q (a noisy, non-monotone
    sweep raises: a negative or infinite exchange rate would reward making images worse)."""
    pts = sorted(points, key=lambda p: p.quality)
    if len(pts) < 2:
        raise LossConfigError("a slope needs at least 2 rate–distortion points")
    for a, b in itertools.pairwise(pts):
        if not (b.bpp < a.bpp and b.distortion > a.distortion):
            raise LossConfigError(
                f"rate must fall and distortion rise with q: q{a.quality} ({a.bpp:.4g} bpp, D {a.distortion:.4g}) → "
                f"q{b.quality} ({b.bpp:.4g} bpp, D {b.distortion:.4g})")
    out = []
    for i, p in enumerate(pts):
        lo, hi = pts[max(i - 1, 0)], pts[min(i + 1, len(pts) - 1)]
        out.append((p.quality, -(hi.bpp - lo.bpp) / (hi.distortion - lo.distortion)))
    return out


def read_sweep_points(path: Path, distortion: str = "kl", codec: str = "bpg",
                      preprocessing: str = "none") -> list[RatePoint]:
    """Rate–distortion points of one codec from a sweep JSON (``prepicm.sweep/1`` or a file with
    the same ``points`` list: ``quality``, ``bpp`` and the distortion by name)."""
    if distortion not in DISTORTIONS:
        raise LossConfigError(f"unknown distortion {distortion!r}; choose one of {', '.join(DISTORTIONS)}")
    data = json.loads(Path(path).read_text())
    pts = [RatePoint(float(p["quality"]), float(p["bpp"]), float(p[distortion])) for p in data.get("points", [])
           if p.get("codec", codec) == codec and p.get("preprocessing", preprocessing) == preprocessing
           and p.get(distortion) is not None]
    if not pts:
        raise LossConfigError(f"{path}: no {codec} points with {distortion!r}")
    return pts


@dataclass(frozen=True)
class LambdaTable:
    """λ(q) and the plain codec's bpp R_ref(q) at measured qualities; log-linear in between,
    clamped outside. ``source`` says where the points came from."""

    qualities: tuple[float, ...]
    lambdas: tuple[float, ...]
    ref_bpp: tuple[float, ...]
    distortion: str
    source: str

    def __post_init__(self) -> None:
        if not (len(self.qualities) == len(self.lambdas) == len(self.ref_bpp) >= 1):
            raise LossConfigError("λ table columns differ in length or are empty")
        if list(self.qualities) != sorted(self.qualities):
            raise LossConfigError("λ table qualities must ascend")
        if min(self.lambdas) <= 0 or min(self.ref_bpp) <= 0:
            raise LossConfigError("λ and reference bpp must be positive")

    @classmethod
    def from_points(cls, points: Sequence[RatePoint], distortion: str, source: str) -> LambdaTable:
        slopes = codec_slopes(points)
        by_q = {p.quality: p.bpp for p in points}
        return cls(tuple(q for q, _ in slopes), tuple(s for _, s in slopes), tuple(by_q[q] for q, _ in slopes),
                   distortion, source)

    @classmethod
    def from_sweep(cls, path: Path, distortion: str = "kl") -> LambdaTable:
        return cls.from_points(read_sweep_points(path, distortion), distortion, str(path))

    def _interp(self, values: Sequence[float], q: torch.Tensor) -> torch.Tensor:
        xs = np.asarray(self.qualities, dtype=np.float64)
        ys = np.log(np.asarray(values, dtype=np.float64))
        out = np.interp(q.detach().double().cpu().numpy(), xs, ys)
        return torch.from_numpy(np.exp(out)).to(dtype=torch.float32, device=q.device)

    def lam(self, q: torch.Tensor) -> torch.Tensor:
        return self._interp(self.lambdas, q)

    def reference_bpp(self, q: torch.Tensor) -> torch.Tensor:
        return self._interp(self.ref_bpp, q)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def per_image_distortion(task: TaskModel, x_hat: torch.Tensor, target: torch.Tensor, distortion: str) -> torch.Tensor:
    """(N,) task distortion of each decoded image: KL to reference probabilities, or CE with labels."""
    logits_fn = getattr(task, "logits", None)
    if logits_fn is None:  # detectors: the task's own loss, one image at a time
        return torch.stack([task.loss(x_hat[i : i + 1], target[i : i + 1])["loss"] for i in range(x_hat.shape[0])])
    logits = logits_fn(x_hat).float()
    if distortion == "kl":
        if target.ndim != 2:
            raise LossConfigError("KL distortion needs reference probabilities (N, C): task.distill_target(x)")
        log_p = F.log_softmax(logits, dim=1)
        return F.kl_div(log_p, target.to(log_p), reduction="none").sum(1)
    if target.ndim != 1 or target.is_floating_point():
        raise LossConfigError("CE distortion needs integer labels (N,)")
    return F.cross_entropy(logits, target.to(logits.device).long(), reduction="none")


class RDLoss(torch.nn.Module):
    """``forward(x, x_bar, coded, quality, target)`` → dict of named terms (batch means, plus
    ``*_per_image``). ``coded`` is the straight-through codec's output (``x_hat``, ``bpp``)."""

    def __init__(self, task: TaskModel, lambdas: LambdaTable, beta: float = 0.5, distortion: str = "kl",
                 normalise: bool = True) -> None:
        super().__init__()
        if distortion not in DISTORTIONS:
            raise LossConfigError(f"unknown distortion {distortion!r}; choose one of {', '.join(DISTORTIONS)}")
        if distortion != lambdas.distortion:
            raise LossConfigError(f"λ table was measured on {lambdas.distortion!r}, the loss uses {distortion!r}")
        if not math.isfinite(beta) or beta < 0:
            raise LossConfigError(f"β must be ≥ 0, got {beta}")
        self.task, self.lambdas, self.beta = task, lambdas, beta
        self.distortion, self.normalise = distortion, normalise

    @torch.no_grad()
    def target(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """What D compares against: the frozen model's prediction on the pristine x (KL) or labels (CE)."""
        if self.distortion == "ce":
            if labels is None:
                raise LossConfigError("CE distortion needs labels; use distortion='kl' for unlabelled images")
            return labels
        return self.task.distill_target(x)

    def forward(self, x: torch.Tensor, x_bar: torch.Tensor, coded: dict[str, torch.Tensor],
                quality: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        q = torch.as_tensor(quality, dtype=torch.float32, device=x.device).reshape(-1)
        if q.numel() == 1:
            q = q.expand(x.shape[0])
        rate = coded["bpp"].float()
        dist = per_image_distortion(self.task, coded["x_hat"], target, self.distortion).to(rate.device)
        pixel = ((x_bar - x) ** 2).flatten(1).mean(1).float()
        lam = self.lambdas.lam(q).to(rate.device)
        ref = self.lambdas.reference_bpp(q).to(rate.device) if self.normalise else torch.ones_like(rate)
        total = (rate + lam * dist + self.beta * pixel) / ref
        return {
            "total": total.mean(),
            "rate_bpp": rate.mean(),
            "distortion": dist.mean(),
            f"distortion_{self.distortion}": dist.mean(),
            "pixel_mse": pixel.mean(),
            "lambda": lam.mean(),
            "rate_per_image": rate.detach(),
            "distortion_per_image": dist.detach(),
            "total_per_image": total.detach(),
        }
