from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from training.npp import NPP_VARIANTS, NppConfig, build_npp, count_parameters, pad_to_multiple


@pytest.mark.parametrize(("variant", "expected"), [("paper", 9_422_235), ("paper_qa", 9_461_537)])
def test_paper_parameter_counts_are_exact(variant: str, expected: int) -> None:
    assert count_parameters(build_npp(variant)) == expected


def test_lighter_variants_are_smaller() -> None:
    lite = count_parameters(build_npp("lite_qa"))
    nano = count_parameters(build_npp("nano_qa"))
    tiny = count_parameters(build_npp("test_tiny"))
    assert (lite, nano) == (2_368_929, 594_057)
    assert tiny < 100_000 < nano < lite < 9_461_537 // 3


def test_registry_names_are_stable() -> None:
    assert NPP_VARIANTS.names() == ["paper", "paper_qa", "lite_qa", "lite_qa_signed", "nano_qa", "local_qa",
                                    "gain_qa", "gain", "gain_qa_lite0", "gain_qa_certainty", "test_tiny"]
    assert not any(NPP_VARIANTS.get(n).config.quantization_adaptive for n in ("paper", "gain"))
    qa = ("paper_qa", "lite_qa", "lite_qa_signed", "nano_qa", "local_qa", "gain_qa", "gain_qa_lite0",
          "gain_qa_certainty", "test_tiny")
    assert all(NPP_VARIANTS.get(n).config.quantization_adaptive for n in qa)


def test_config_rejects_wrong_number_of_qa_widths() -> None:
    with pytest.raises(ValueError, match="qa_hidden needs 8"):
        NppConfig(qa_hidden=(4, 4))


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_npp("test_tiny").eval()


@pytest.mark.parametrize("size", [(1, 1), (3, 20), (8, 600), (17, 13), (33, 65), (64, 48)])
def test_output_has_input_shape_and_unit_range(tiny: torch.nn.Module, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = tiny(x, torch.tensor([[0.3], [0.8]]))
    assert set(out) == {"x_bar"}
    y = out["x_bar"]
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("size", [(17, 13), (33, 65), (8, 600), (1, 1)])
def test_crop_is_exactly_the_padded_computation(tiny: torch.nn.Module, size: tuple[int, int]) -> None:
    """Running on an odd size == running on the padded image and cropping the top-left."""
    h, w = size
    x = torch.rand(1, 3, h, w)
    c = torch.tensor([[0.5]])
    ph, pw = (16 - h % 16) % 16, (16 - w % 16) % 16
    mode = "replicate" if (ph >= h or pw >= w) else "reflect"
    padded = F.pad(x, [0, pw, 0, ph], mode=mode)
    assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
    with torch.no_grad():
        direct = tiny(x, c)["x_bar"]
        via_pad = tiny(padded, c)["x_bar"][:, :, :h, :w]
    torch.testing.assert_close(direct, via_pad, rtol=0, atol=0)


def test_padding_modes() -> None:
    x = torch.arange(20.0).reshape(1, 1, 4, 5)
    reflect = pad_to_multiple(torch.rand(1, 3, 17, 30))
    assert reflect.shape[-2:] == (32, 32)
    small = pad_to_multiple(x)  # pad 12 ≥ side 4: reflect impossible → replicate
    assert small.shape[-2:] == (16, 16)
    assert torch.equal(small[0, 0, 15, 15], x[0, 0, 3, 4])
    ok = torch.rand(1, 3, 32, 48)
    assert pad_to_multiple(ok) is ok


def test_conditioning_changes_output(tiny: torch.nn.Module) -> None:
    torch.manual_seed(1)
    model = build_npp("paper_qa").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        low, high = (model(x, torch.tensor([[v]]))["x_bar"] for v in (25 / 51, 44 / 51))
        tiny_low, tiny_high = (tiny(x, torch.tensor([[v]]))["x_bar"] for v in (0.1, 0.9))
    assert float((low - high).abs().max()) > 1e-4
    assert float((tiny_low - tiny_high).abs().max()) > 1e-4


def test_qa_model_requires_cond_and_plain_model_ignores_it() -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="pass cond"):
        build_npp("test_tiny").eval()(x)
    plain = build_npp("paper").eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(x)["x_bar"], plain(x, torch.tensor([[0.9]]))["x_bar"])


def test_per_sample_conditioning_matches_single_runs(tiny: torch.nn.Module) -> None:
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        both = tiny(x, torch.tensor([[0.2], [0.7]]))["x_bar"]
        first = tiny(x[:1], torch.tensor([[0.2]]))["x_bar"]
        second = tiny(x[1:], torch.tensor(0.7))["x_bar"]
    torch.testing.assert_close(both, torch.cat([first, second]), rtol=0, atol=1e-6)


def test_gradients_reach_every_parameter_in_training_mode() -> None:
    model = build_npp("test_tiny").train()
    out = model(torch.rand(2, 3, 32, 32), torch.tensor([[0.4], [0.6]]))["x_bar"]
    (out - 0.5).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("size", [(1, 1), (17, 13), (64, 32)])
def test_torchscript_matches_eager(tiny: torch.nn.Module, size: tuple[int, int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(tiny)
    x, c = torch.rand(1, 3, *size), torch.tensor([[0.6]])
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, c)["x_bar"], tiny(x, c)["x_bar"], rtol=0, atol=0)
