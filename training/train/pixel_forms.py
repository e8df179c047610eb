"""Per-image optimisation of a picture against the training loss, under a chosen form of change.

:func:`optimise_pixels` runs Adam on the parameters of one *form* of change per picture — every
pixel free (``pixels``), a smooth perturbation (``lowres``), or a smooth map of how much of the
picture's fine detail to keep (``detail_gain``) — against the run's loss (real codec forward,
proxy backward, λ at the codec's slope). The headroom probe (``benchmarks/headroom_probe.py``)
measures how far each form moves the real codec's rate–accuracy curve; distillation
(:mod:`training.train.distill`) turns the optima into regression targets for the NPP. The forms
differ in what a network could learn from them: free pixels find per-picture patterns tied to
the codec's decisions, a detail-gain map is by construction a filter of the picture whose only
free part is a smooth map.

``region`` limits the change to part of the frame (the rest keeps the original pixels): the
classifiers never read a 227×227 picture's outer border, and changes there buy bits without any
content being understood (``benchmarks/unread_border.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from shared.registry import Registry
from training.npp.gain import apply_detail_gain, blur, gaussian_kernel
from training.proxy.real_codec import StraightThroughCodec
from training.train.loss import RDLoss


class PictureForm:
    """Parameters of a change to a batch of pictures (N,3,H,W in [0,1]) and the changed pictures."""

    #: a stable name, as registered
    name: ClassVar[str] = ""

    def init(self, x: torch.Tensor) -> torch.Tensor:
        """Parameters that give back ``x`` unchanged."""
        raise NotImplementedError

    def apply(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The changed pictures (not yet clamped)."""
        raise NotImplementedError


def _up(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(p, size=(like.shape[-2], like.shape[-1]), mode="bilinear", align_corners=False)


def _low_size(x: torch.Tensor, scale: int) -> tuple[int, int]:
    return math.ceil(x.shape[-2] / scale), math.ceil(x.shape[-1] / scale)


@dataclass(frozen=True)
class Pixels(PictureForm):
    """Every pixel free: the headroom probe's upper bound."""

    name: ClassVar[str] = "pixels"

    def init(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def apply(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x + p


@dataclass(frozen=True)
class LowRes(PictureForm):
    """An additive change ``scale`` times coarser than the picture, bilinearly upsampled."""

    name: ClassVar[str] = "lowres"
    scale: int = 8

    def init(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 3, *_low_size(x, self.scale))

    def apply(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x + _up(p, x)


@dataclass(frozen=True)
class DetailGain(PictureForm):
    """``blur(x) + g·(x − blur(x))``: the picture's fine detail (above a Gaussian of ``sigma``
    pixels) kept with a gain g ∈ [0, 2] that varies smoothly over the frame (a map ``scale`` times
    coarser, one gain for all three colours; 1 = unchanged, 0 = that region blurred, 2 = sharpened).
    Any optimum of this form is a spatially varying filter of the picture."""

    name: ClassVar[str] = "detail_gain"
    scale: int = 8
    sigma: float = 1.5

    def init(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 1, *_low_size(x, self.scale))

    def gain(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return (1.0 + _up(p, x)).clamp(0.0, 2.0)

    def apply(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        # exactly the output family of the detail-gain NPP, so its optima are targets it can reach
        return apply_detail_gain(x, blur(x, gaussian_kernel(self.sigma)), 1.0 + p)


PICTURE_FORMS: Registry[type[PictureForm]] = Registry("picture form")
for _form in (Pixels, LowRes, DetailGain):
    PICTURE_FORMS.register(_form.name, _form)


def make_form(name: str, scale: int = 8, sigma: float = 1.5) -> PictureForm:
    """The registered form ``name`` with the options it takes."""
    cls = PICTURE_FORMS.get(name)
    if cls is LowRes:
        return LowRes(scale=scale)
    if cls is DetailGain:
        return DetailGain(scale=scale, sigma=sigma)
    return cls()


def window_mask(shape: tuple[int, int], lo: int, hi: int) -> torch.Tensor:
    """1 on rows and columns [lo, hi) of an H×W frame, 0 elsewhere; shaped (1,1,H,W)."""
    m = torch.zeros(1, 1, *shape)
    m[..., lo:hi, lo:hi] = 1.0
    return m


def optimise_pixels(x: torch.Tensor, quality: int | torch.Tensor, st: StraightThroughCodec, loss_fn: RDLoss,
                    steps: int, lr: float, form: PictureForm | None = None,
                    region: torch.Tensor | None = None) -> torch.Tensor:
    """Adam on ``form``'s parameters (every pixel by default) for the pictures ``x`` (N,3,H,W in
    [0,1]) against ``loss_fn`` at ``quality`` (one q or one per image), through ``st``; returns
    the optimised pictures, clamped to [0, 1]. ``region`` (broadcastable to ``x``, 1 where the
    picture may change) keeps the original pixels elsewhere. Every image is optimised on its own
    loss (Adam is element-wise and the task model is frozen), so the result does not depend on
    which images share a batch."""
    form = form or Pixels()
    target = loss_fn.target(x)
    p = form.init(x).requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)

    def picture() -> torch.Tensor:
        y = form.apply(x, p)
        if region is not None:
            y = x + region * (y - x)
        return y.clamp(0.0, 1.0)

    for _ in range(steps):
        y = picture()
        # × N: each image's gradient is that of its own loss, not 1/N of it
        total = loss_fn(x, y, st(y, quality), quality, target)["total"] * x.shape[0]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    with torch.no_grad():
        return picture()
