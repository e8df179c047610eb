"""Straight-through real codec: values are the real codec's, gradients the proxy's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.pipeline import EncodePipeline, EncoderPool, decode
from training.proxy.model import BpgProxy
from training.proxy.real_codec import StraightThroughCodec, to_frames


@pytest.fixture(scope="module")
def proxy() -> BpgProxy:
    return BpgProxy()


def _batch(kodak_image: np.ndarray) -> torch.Tensor:
    crops = [kodak_image[100:140, 200:248], kodak_image[300:340, 500:548]]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1).float() / 255 for c in crops])


def _check(layer: StraightThroughCodec, proxy: BpgProxy, x0: torch.Tensor, qs: list[int]) -> None:
    x = x0.clone().requires_grad_(True)
    x_bar = x * 0.9 + 0.05  # stands in for the NPP: gradients must reach x through it
    out = layer(x_bar, qs)
    pipe = EncodePipeline("bpg")
    for i, (frame, q) in enumerate(zip(to_frames(x_bar), qs, strict=True)):
        enc = pipe.encode(frame, q)
        real = torch.from_numpy(decode(enc.bitstream).image).permute(2, 0, 1).float() / 255
        assert torch.equal(out["x_hat"][i], real)  # the real decoded pixels, bit for bit
        assert out["bits"][i].item() == enc.bits == len(enc.bitstream) * 8  # the real file size
        assert out["bpp"][i].item() == pytest.approx(enc.bpp, rel=1e-6)
    # A loss linear in (X̂, R): its upstream gradient does not depend on the forward values, so
    # the input gradient must be exactly the proxy's (a non-linear loss is evaluated at the real
    # codec's values, as intended, and chains through the proxy's Jacobian).
    w = torch.linspace(-1, 1, x0.numel()).reshape(x0.shape)
    ((w * out["x_hat"]).sum() + out["bpp"].sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    x2 = x0.clone().requires_grad_(True)
    p = proxy(x2 * 0.9 + 0.05, torch.tensor(qs, dtype=torch.float32))
    ((w * p["x_hat"]).sum() + (p["bits"] / (x0.shape[-2] * x0.shape[-1])).sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_forward_is_the_real_codec_backward_is_the_proxy(kodak_image: np.ndarray, proxy: BpgProxy) -> None:
    _check(StraightThroughCodec(proxy), proxy, _batch(kodak_image), [27, 40])


def test_same_values_through_an_encoder_pool(kodak_image: np.ndarray, proxy: BpgProxy) -> None:
    with EncoderPool(workers=1) as pool:
        _check(StraightThroughCodec(proxy, pool=pool), proxy, _batch(kodak_image), [33, 33])


def test_proxy_only_mode_uses_the_proxy_forward(kodak_image: np.ndarray, proxy: BpgProxy) -> None:
    x = _batch(kodak_image)
    out = StraightThroughCodec(proxy, mode="proxy")(x, 30)
    ref = proxy(x, 30)
    assert torch.equal(out["x_hat"], ref["x_hat"]) and torch.equal(out["bits"], ref["bits"])
    assert "codec_bits" not in out


def test_bad_arguments_raise(proxy: BpgProxy) -> None:
    with pytest.raises(ValueError, match="mode"):
        StraightThroughCodec(proxy, mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="models BPG"):
        StraightThroughCodec(proxy, codec="jpeg")
    with pytest.raises(ValueError, match="qualities"):
        StraightThroughCodec(proxy)(torch.rand(2, 3, 16, 16), [30, 31, 32])
