"""Map shapes: per-cell gains read off changed pictures, and how alike two maps are."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shared.tasks import get_task
from training.npp.gain import blur, gaussian_kernel
from training.train.map_shape import cell_gains, saliency_gains, shape_correlation, shape_loss, window_cells
from training.train.pixel_forms import DetailGain


def _pictures(n: int = 2, size: int = 48) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_cell_gains_read_back_a_gain_that_is_constant_per_cell() -> None:
    x = _pictures()
    g = 0.2 + 1.6 * torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    low = blur(x, gaussian_kernel(1.5))
    y = low + F.interpolate(g, scale_factor=8, mode="nearest") * (x - low)
    assert torch.allclose(cell_gains(x, y), g, atol=1e-4)
    assert torch.allclose(cell_gains(x, x), torch.ones_like(g))


def test_shape_ignores_the_overall_level_and_reads_only_the_given_cells() -> None:
    a = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    inner = slice(1, 5)
    assert torch.allclose(shape_correlation(a, 0.5 * a + 0.3, inner), torch.ones(3))
    assert torch.allclose(shape_correlation(a, -a, inner), -torch.ones(3))
    b = a.clone()
    b[..., 0, :] = torch.rand(6)  # outside the inner cells: no effect
    assert torch.allclose(shape_correlation(a, b, inner), torch.ones(3))
    assert torch.equal(shape_correlation(a, torch.ones_like(a), inner), torch.zeros(3))  # a flat map: no shape
    assert window_cells(12, 215, 8) == slice(2, 26)


def test_saliency_is_a_non_negative_map_on_the_form_s_grid() -> None:
    x = _pictures(1, 64)
    s = saliency_gains(get_task("efficientnet_lite0"), x, DetailGain())
    assert s.shape == (1, 1, 8, 8) and float(s.min()) >= 0.0 and float(s.max()) > 0.0


def test_the_shape_loss_ignores_each_picture_s_level_of_blur_and_trains_the_map() -> None:
    x = _pictures()
    low = blur(x, gaussian_kernel(1.5))
    g = 0.2 + 1.2 * torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(3))

    def changed(gain: torch.Tensor) -> torch.Tensor:
        return low + F.interpolate(gain, scale_factor=8, mode="nearest") * (x - low)

    goal = changed(g)
    assert float(shape_loss(x, goal, goal, margin=1)) < 1e-9
    assert float(shape_loss(x, changed(g + 0.3), goal, margin=1)) < 1e-9  # another level, the same shape
    p = torch.ones(2, 1, 6, 6, requires_grad=True)
    loss = shape_loss(x, changed(p), goal, margin=1)
    assert float(loss.detach()) > 0.01
    loss.backward()
    assert p.grad is not None and float(p.grad[..., 1:5, 1:5].abs().sum()) > 0
    assert float(p.grad[..., 0, :].abs().sum()) == 0.0  # the border cells are left to the pixel term
