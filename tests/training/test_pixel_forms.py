"""Forms of per-image change: identity at their start, what each can express, and a region kept."""

from __future__ import annotations

import pytest
import torch

from shared.codecs.bpg.codec import BpgCodec
from shared.registry import RegistryError
from shared.tasks import get_task
from training.npp.gain import blur, gaussian_kernel
from training.proxy.model import BpgProxy
from training.proxy.real_codec import StraightThroughCodec
from training.train.config import resolve_path
from training.train.loss import LambdaTable, RDLoss
from training.train.pixel_forms import (
    PICTURE_FORMS,
    DetailGain,
    LowRes,
    PictureForm,
    optimise_pixels,
    window_mask,
)


def _pictures(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", PICTURE_FORMS.names())
def test_every_form_starts_at_the_picture(name: str) -> None:
    x = _pictures(size=30)  # not a multiple of the coarse maps' scale
    form: PictureForm = PICTURE_FORMS.get(name)()
    assert torch.allclose(form.apply(x, form.init(x)), x, atol=1e-6)


def test_unknown_form_names_the_choices() -> None:
    with pytest.raises(RegistryError, match="detail_gain"):
        PICTURE_FORMS.get("wavelets")


def test_detail_gain_is_a_filter_of_the_picture() -> None:
    form = DetailGain(scale=4, sigma=1.5)
    x = _pictures()
    p = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    # gain 0 everywhere: the Gaussian low-pass; any gain map leaves a flat picture flat
    assert torch.allclose(form.apply(x, torch.full_like(p, -1.0)), blur(x, gaussian_kernel(1.5)), atol=1e-6)
    flat = torch.full_like(x, 0.37)
    assert torch.allclose(form.apply(flat, p), flat, atol=1e-6)
    assert float(form.gain(x, p * 10).min()) >= 0.0 and float(form.gain(x, p * 10).max()) <= 2.0
    # the low-pass keeps a constant and removes most of a one-pixel checkerboard
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]).remainder(2).float().expand(1, 3, 16, 16)
    assert float(blur(checker, gaussian_kernel(1.5)).std()) < 0.05 * float(checker.std())


def test_lowres_change_is_the_coarse_map_upsampled() -> None:
    form = LowRes(scale=8)
    x = _pictures()
    p = form.init(x)
    assert p.shape == (2, 3, 4, 4)
    p = p + 0.1
    assert torch.allclose(form.apply(x, p) - x, torch.full_like(x, 0.1), atol=1e-6)


def test_optimised_pictures_change_only_inside_the_region() -> None:
    task = get_task("efficientnet_lite0")
    lambdas = LambdaTable.from_sweep(resolve_path("configs/training/bpg_efficientnet_lite0_points.json"), "kl")
    loss_fn = RDLoss(task, lambdas, beta=0.5)
    st = StraightThroughCodec(BpgProxy(), BpgCodec(level=1))
    x = _pictures(size=32)
    region = window_mask((32, 32), 8, 24)
    for form in (None, DetailGain(scale=4)):
        y = optimise_pixels(x, 34, st, loss_fn, steps=2, lr=0.05, form=form, region=region)
        outside = region.expand_as(x) == 0
        assert torch.equal(y[outside], x[outside])
        assert float((y - x)[~outside].abs().max()) > 1 / 255
