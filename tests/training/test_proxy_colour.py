"""The proxy's torch colour path equals our BPG encoder's numpy path (and decoder's, to rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.codecs import yuv
from training.proxy import colour


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255.0


def _plane(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]


@pytest.mark.parametrize("box", [(0, 0, 96, 128), (100, 300, 37, 53), (7, 11, 1, 1), (200, 40, 2, 9)])
def test_encoder_colour_and_chroma_filter_match_numpy(kodak_image: np.ndarray, box: tuple[int, ...]) -> None:
    top, left, h, w = box
    rgb = np.ascontiguousarray(kodak_image[top : top + h, left : left + w])
    y_np, cb_np, cr_np = yuv.rgb_to_ycc(rgb)
    y_t, cb_t, cr_t = colour.rgb_to_ycc(_t(rgb))
    for a, b in ((y_np, y_t), (cb_np, cb_t), (cr_np, cr_t)):
        assert np.abs(b[0, 0].numpy() - a).max() / 255 <= 1e-4
    for a, b in ((cb_np, cb_t), (cr_np, cr_t)):
        down_np = yuv.downsample_420(a)
        down_t = colour.downsample_420(b)
        assert down_t.shape[-2:] == down_np.shape == ((h + 1) // 2, (w + 1) // 2)
        assert np.abs(down_t[0, 0].numpy() - down_np).max() / 255 <= 1e-4
    # and the 8-bit planes our encoder hands x265 are the rounded torch planes
    planes = yuv.rgb_to_yuv420(rgb)
    t8 = [torch.clamp(torch.round(p), 0, 255) for p in (y_t, colour.downsample_420(cb_t), colour.downsample_420(cr_t))]
    mismatch = sum(int((t[0, 0].numpy().astype(np.uint8) != p).sum()) for t, p in zip(t8, planes, strict=True))
    assert mismatch <= 2  # a float32 tie at .5 may round either way


def test_decoder_colour_path_matches_bpgdec_to_rounding(kodak_image: np.ndarray) -> None:
    rgb = np.ascontiguousarray(kodak_image[50:113, 80:171])  # odd sizes
    y, cb, cr = yuv.rgb_to_yuv420(rgb)
    h, w = y.shape
    ref = yuv.yuv420_to_rgb(y, cb, cr).astype(np.float64)
    cb_up = colour.upsample_420(_plane(cb), h, w)
    cr_up = colour.upsample_420(_plane(cr), h, w)
    np_cb = yuv.upsample_chroma(cb, h, w, 2, 2).astype(np.float64)
    assert np.abs(cb_up[0, 0].numpy() - np_cb).max() <= 0.5 + 1e-3  # bpgdec rounds once at the end
    out = colour.ycc_to_rgb(_plane(y), cb_up, cr_up).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    # float path vs bpgdec's fixed point with its chroma rounded to 8 bits first: within 2 levels
    assert np.abs(out - ref).max() <= 2.0
    assert np.abs(out - ref).mean() <= 0.5


def test_colour_path_is_differentiable() -> None:
    x = torch.rand(2, 3, 10, 13, requires_grad=True)
    y, cb, cr = colour.rgb_to_ycc(x)
    up = colour.upsample_420(colour.downsample_420(cr), 10, 13)
    (colour.downsample_420(cb).sum() + y.sum() + up.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ycc_round_trip_is_identity() -> None:
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(colour.ycc_to_rgb(*colour.rgb_to_ycc(x)), x)
