"""The BPG proxy: HEVC's step-size law, quantisers, intra prediction, and the fitted rate model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.proxy.model import BpgProxy
from training.proxy.quantise import chroma_qp, qstep, quantise, slice_qp
from training.proxy.rate import DEFAULT_PARAMS, ProxyParams, RateModel, feature_names
from training.proxy.transform import dct2, from_blocks, idct2, predictions, to_blocks


def test_qp_law_and_bpgenc_offset() -> None:
    q = torch.tensor([29.0, 22.0, 46.0])
    assert slice_qp(q).tolist() == [26.0, 19.0, 43.0]
    torch.testing.assert_close(qstep(torch.tensor([4.0, 10.0, 26.0])), torch.tensor([1.0, 2.0, 2 ** (22 / 6)]))
    got = chroma_qp(torch.tensor([20.0, 29.0, 30.0, 35.0, 43.0, 44.0, 51.0]))
    assert got.tolist() == [20.0, 29.0, 29.0, 33.0, 37.0, 38.0, 45.0]  # H.265 Table 8-10


def test_quantisers() -> None:
    u = torch.tensor([-2.6, -0.4, 0.2, 0.55, 1.49, 3.0], requires_grad=True)
    q, mag = quantise(u, "ste", 0.5)
    assert q.tolist() == [-3.0, -0.0, 0.0, 1.0, 1.0, 3.0] and mag.tolist() == [3.0, 0.0, 0.0, 1.0, 1.0, 3.0]
    q.sum().backward()
    assert u.grad is not None and u.grad.tolist() == [1.0] * 6  # straight through
    dz, _ = quantise(u.detach(), "hard", 1 / 3)
    assert dz.tolist() == [-2.0, -0.0, 0.0, 0.0, 1.0, 3.0]  # dead zone: ⌊|u| + 1/3⌋
    torch.manual_seed(0)
    noisy, _ = quantise(u.detach().repeat(1000), "noise", 0.5)
    d = noisy - u.detach().repeat(1000)
    assert float(d.abs().max()) <= 0.5 and abs(float(d.mean())) < 0.05
    with pytest.raises(ValueError, match="quantiser"):
        quantise(u, "round", 0.5)


def test_dct_is_orthonormal_and_blocks_round_trip() -> None:
    x = torch.rand(2, 1, 16, 24, dtype=torch.float64)
    b = to_blocks(x, 8)
    assert b.shape == (2, 2, 3, 8, 8)
    torch.testing.assert_close(from_blocks(b), x)
    c = dct2(b)
    torch.testing.assert_close(idct2(c), b)
    torch.testing.assert_close((c**2).sum(), (b**2).sum())  # Parseval


def test_intra_prediction_is_exact_where_hevc_is() -> None:
    const = torch.full((1, 1, 16, 16), 77.0)
    pred = predictions(const, 8, ("dc", "planar", "horizontal", "vertical"))
    torch.testing.assert_close(pred, torch.full_like(pred, 77.0))
    rows = torch.arange(16.0).view(1, 1, 16, 1).expand(1, 1, 16, 16).contiguous()  # constant along rows
    hpred = predictions(rows, 8, ("horizontal",))[:, 0]
    exact = to_blocks(rows, 8)[:, :, 1:]  # blocks right of the first column have a true left neighbour
    torch.testing.assert_close(hpred[:, :, 1:], exact)


def test_committed_params_load() -> None:
    p = ProxyParams.load(DEFAULT_PARAMS)
    assert p.features == feature_names() and len(p.coefficients) == len(p.qualities) >= 4
    assert all(min(row) >= 0 for row in p.coefficients)  # rate never falls as a level grows
    assert p.qualities == sorted(p.qualities)


def test_rate_model_interpolates_between_fitted_qualities() -> None:
    m = RateModel([20.0, 30.0], [[1.0, 0.0], [3.0, 2.0]])
    f = torch.tensor([[1.0, 1.0]] * 4)
    assert m(f, torch.tensor([20.0, 25.0, 30.0, 45.0])).tolist() == [1.0, 3.0, 5.0, 5.0]


@pytest.fixture(scope="module")
def crop(kodak_image: np.ndarray) -> torch.Tensor:
    c = np.ascontiguousarray(kodak_image[200:264, 300:380])
    return torch.from_numpy(c).permute(2, 0, 1)[None].float() / 255


def test_bits_fall_and_distortion_rises_with_q(crop: torch.Tensor) -> None:
    proxy = BpgProxy()
    with torch.no_grad():
        outs = [proxy(crop, q, quantiser="hard") for q in (22, 30, 38, 46)]
    bits = [float(o["bits"]) for o in outs]
    mse = [float(((o["x_hat"] - crop) ** 2).mean()) for o in outs]
    assert bits == sorted(bits, reverse=True) and bits[-1] > 0
    assert mse == sorted(mse)
    assert 10 * math.log10(1 / mse[0]) > 35  # q 22 is near-transparent
    assert outs[0]["x_hat"].shape == crop.shape and float(outs[0]["bpp"]) == pytest.approx(bits[0] / (64 * 80))


def test_mixed_qualities_in_one_batch_equal_separate_calls(crop: torch.Tensor) -> None:
    proxy = BpgProxy()
    x = torch.cat([crop, crop.flip(-1)])
    with torch.no_grad():
        both = proxy(x, torch.tensor([25, 41]), quantiser="hard")
        a, b = proxy(x[:1], 25, quantiser="hard"), proxy(x[1:], 41, quantiser="hard")
    torch.testing.assert_close(both["bits"], torch.cat([a["bits"], b["bits"]]))
    torch.testing.assert_close(both["x_hat"], torch.cat([a["x_hat"], b["x_hat"]]))


@pytest.mark.parametrize("quantiser", ["ste", "noise"])
def test_gradients_reach_the_input(crop: torch.Tensor, quantiser: str) -> None:
    x = crop.clone().requires_grad_(True)
    out = BpgProxy(quantiser=quantiser)(x, 32)
    out["bits"].sum().backward()
    g_rate = x.grad.clone()  # type: ignore[union-attr]
    assert torch.isfinite(g_rate).all() and g_rate.abs().sum() > 0
    x.grad = None
    out2 = BpgProxy(quantiser=quantiser)(x, 32)
    ((out2["x_hat"] - 0.5) ** 2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_inputs_raise() -> None:
    proxy = BpgProxy()
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        proxy(torch.rand(3, 8, 8), 30)
    with pytest.raises(ValueError, match=r"0\.\.51"):
        proxy(torch.rand(1, 3, 8, 8), 60)
    with pytest.raises(ValueError, match="qualities"):
        proxy(torch.rand(2, 3, 8, 8), torch.tensor([30, 31, 32]))
    with pytest.raises(ValueError, match="quantiser"):
        BpgProxy(quantiser="round")
