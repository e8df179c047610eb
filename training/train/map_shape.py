"""How alike two detail-gain changes of the same pictures are in *shape*: where they keep detail
and where they blur it, apart from how much they blur overall.

A distilled NPP can reproduce half of its targets' pixel change (``reproduced_share``) and still
miss most of their gain: the change's energy is dominated by each picture's overall level of blur,
while the gain lies in which regions keep their detail (docs/training.md, lesson 12). This module
measures that second part. :func:`cell_gains` reads the effective gain of each ``scale``×``scale``
cell off a changed picture (least squares of the change on the picture's own detail), and
:func:`shape_correlation` correlates two such maps over the cells the classifier reads, each
picture's mean gain removed. :func:`saliency_gains` is a reference any predictor should beat: the
classifier's first-order sensitivity to each cell's detail.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shared.tasks import TaskModel
from training.npp.gain import blur, gaussian_kernel
from training.train.pixel_forms import DetailGain


def cell_gains(x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, scale: int = 8) -> torch.Tensor:
    """The gain g per cell for which ``y`` ≈ B + g·(x − B) (B: x blurred by a Gaussian of
    ``sigma``), fitted by least squares over each cell's pixels and colours; (N,1,⌈H/scale⌉,⌈W/scale⌉).
    1 where y = x; cells without detail get 1."""
    d = x - blur(x, gaussian_kernel(sigma))

    def per_cell(v: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(v.sum(1, keepdim=True), scale, ceil_mode=True)

    return 1.0 + per_cell((y - x) * d) / per_cell(d * d).clamp_min(1e-10)


def window_cells(lo: int, hi: int, scale: int = 8) -> slice:
    """The cells (of ``scale`` pixels) that lie wholly inside pixel rows [lo, hi)."""
    return slice(-(-lo // scale), hi // scale)


def shape_correlation(a: torch.Tensor, b: torch.Tensor, cells: slice) -> torch.Tensor:
    """Per picture, the correlation of two cell maps (N,1,h,w) over ``cells`` × ``cells``, each
    map's mean over those cells removed: 1 = the same regions kept and blurred, 0 = unrelated."""
    a, b = a[..., cells, cells].flatten(1), b[..., cells, cells].flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / ((a * a).sum(1) * (b * b).sum(1)).sqrt().clamp_min(1e-12)


def saliency_gains(task: TaskModel, x: torch.Tensor, form: DetailGain) -> torch.Tensor:
    """|∂ log p_top / ∂g| per cell of ``form``'s map at g = 1: how much the classifier's top class
    depends on each cell's detail, to first order."""
    p = form.init(x).requires_grad_(True)
    log_p = torch.log_softmax(task.logits(form.apply(x, p)).float(), dim=1)  # type: ignore[attr-defined]
    (grad,) = torch.autograd.grad(log_p.max(1).values.sum(), p)
    return grad.abs()


def shape_loss(x: torch.Tensor, y: torch.Tensor, goal: torch.Tensor, sigma: float = 1.5, scale: int = 8,
               margin: int = 2) -> torch.Tensor:
    """Mean squared difference between the shapes of two changes of ``x`` — its version ``y``
    (differentiable) and the target ``goal`` — as per-cell gains with each picture's mean removed,
    over the cells at least ``margin`` cells from the border (the frame a classifier does not read
    is left to the pixel term; fewer on pictures too small for it)."""
    a, b = cell_gains(x, y, sigma, scale), cell_gains(x, goal, sigma, scale)
    margin = min(margin, (min(a.shape[-2:]) - 1) // 2)  # small pictures keep at least their centre
    inner = slice(margin, -margin if margin else None)
    a, b = a[..., inner, inner], b[..., inner, inner]
    a = a - a.mean(dim=(-2, -1), keepdim=True)
    b = b - b.mean(dim=(-2, -1), keepdim=True)
    return ((a - b) ** 2).mean()
