"""The detail-gain NPPs (``gain_qa``, ``gain_qa_lite0`` guided by a classifier's early features,
``gain_qa_certainty`` shifted by how sure a classifier is, and ``gain`` without QA layers): identity
start, a filter whatever its weights, export."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from shared.tasks import get_task
from training.export import ExportOptions, export_artifact
from training.npp import GainNPP, build_npp, count_parameters
from training.npp.gain import GainNppConfig, blur, gaussian_kernel
from training.train.loop import identity_init
from training.train.pixel_forms import DetailGain

COND = torch.tensor([[25 / 51], [44 / 51]])


VARIANTS = ["gain_qa", "gain_qa_lite0", "gain_qa_certainty", "gain"]


def _trained_looking(seed: int = 0, variant: str = "gain_qa") -> GainNPP:
    """A gain NPP with a non-zero output layer, as after training."""
    torch.manual_seed(seed)
    npp = build_npp(variant)
    assert isinstance(npp, GainNPP)
    with torch.no_grad():
        npp.out.weight.normal_(std=0.02)
        if npp.certainty is not None:
            last = npp.level[2]
            assert isinstance(last, torch.nn.Linear)
            last.weight.normal_(std=0.2)
    return npp.eval()


def test_it_is_small() -> None:
    assert count_parameters(build_npp("gain_qa")) == 101_794
    assert count_parameters(build_npp("gain")) == 97_505  # the QA MLPs are 4% of it
    guided = build_npp("gain_qa_lite0")
    assert sum(p.numel() for p in guided.parameters() if p.requires_grad) == 181_634
    sure = build_npp("gain_qa_certainty")
    assert sum(p.numel() for p in sure.parameters() if p.requires_grad) == 101_891  # gain_qa + a 97-weight MLP


def test_certainty_shifts_each_picture_s_whole_map_by_how_sure_the_classifier_is() -> None:
    npp = build_npp("gain_qa_certainty").train()
    assert isinstance(npp, GainNPP) and npp.certainty is not None
    assert not npp.certainty.training and not any(p.requires_grad for p in npp.certainty.parameters())
    npp.reset_to_identity()
    first, last = npp.level[0], npp.level[2]
    assert isinstance(first, torch.nn.Linear) and isinstance(last, torch.nn.Linear)
    with torch.no_grad():  # the MLP passes (q, entropy, top, margin) through and keeps −entropy
        first.weight.zero_()
        first.weight[:4].copy_(torch.eye(4))
        first.bias.zero_()
        last.weight[0, 1] = -1.0
    x = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(5))
    x[1] = x[1] * 0.2 + 0.4  # another picture, another prediction
    sure = npp.certainty(x)
    with torch.no_grad():
        gain = npp(x, COND)["gain"]
    # with the content path at zero, each picture's map is one number: 1 − its normalised entropy
    assert torch.allclose(gain, (1.0 - sure[:, :1]).view(2, 1, 1, 1).expand_as(gain), atol=1e-6)
    assert float((gain[0] - gain[1]).abs().max()) > 1e-4


def test_the_guide_is_the_classifiers_frozen_first_stages() -> None:
    npp = build_npp("gain_qa_lite0").train()
    assert isinstance(npp, GainNPP) and npp.guide is not None
    assert not npp.guide.training  # batch-norm keeps the classifier's statistics while the NPP trains
    assert not any(p.requires_grad for p in npp.guide.parameters())
    stem = get_task("efficientnet_lite0").module.state_dict()["conv_stem.weight"]
    assert torch.equal(npp.guide.to8.state_dict()["0.weight"], stem)
    f8, f16 = npp.guide(torch.rand(1, 3, 64, 48))
    assert f8.shape == (1, 40, 8, 6) and f16.shape == (1, 112, 4, 3)
    with pytest.raises(ValueError, match="image classifier"):
        GainNPP(GainNppConfig(guide="yolov5n"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_identity_init_gives_back_the_picture_and_every_layer_then_learns(variant: str) -> None:
    npp = identity_init(build_npp(variant)).train()
    x = torch.rand(2, 3, 40, 36)
    with torch.no_grad():
        out = npp(x, COND)["x_bar"]
    assert float((out - x).abs().max()) < 1e-6
    assert torch.equal((out * 255).round(), (x * 255).round())
    opt = torch.optim.SGD(npp.parameters(), lr=1e-2)
    for _ in range(2):  # a mean, not a sum: a large first step would clamp every gain to 0 or 2
        opt.zero_grad()
        ((npp(x, COND)["x_bar"] - 0.5) ** 2).mean().backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in npp.parameters() if p.requires_grad)


@pytest.mark.parametrize("variant", VARIANTS)
def test_any_weights_give_a_filter_of_the_picture(variant: str) -> None:
    """Flat regions stay flat and the output lies between the blurred and twice-sharpened picture:
    the network chooses a gain per region, not pixel values."""
    npp = _trained_looking(variant=variant)
    with torch.no_grad():
        npp.out.weight.normal_(std=5.0)  # gains far outside [0, 2] before clamping
        flat = torch.full((2, 3, 48, 48), 0.42)
        assert torch.allclose(npp(flat, COND)["x_bar"], flat, atol=1e-6)
        x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
        out = npp(x, COND)
        low = blur(x, gaussian_kernel(1.5))
        detail = x - low
        g = (out["x_bar"] - low) / detail.where(detail.abs() > 1e-3, torch.ones_like(detail))
        g = g[detail.abs() > 1e-3]
        assert float(g.min()) >= -1e-3 and float(g.max()) <= 2 + 1e-3
        assert float((out["x_bar"] - x).abs().max()) > 0.05
        assert out["gain"].shape == (2, 1, 6, 6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_its_output_family_is_the_detail_gain_form(variant: str) -> None:
    """Targets optimised in the ``detail_gain`` form are outputs this network can produce."""
    npp = _trained_looking(variant=variant)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        out = npp(x, COND)
        assert torch.allclose(DetailGain(scale=8, sigma=1.5).apply(x, out["gain"] - 1.0).clamp(0, 1), out["x_bar"],
                              atol=1e-6)


def test_conditioning_is_required_and_changes_the_output() -> None:
    npp = _trained_looking()
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="pass cond"):
        npp(x)
    with torch.no_grad():
        assert not torch.equal(npp(x, torch.tensor([[0.3]]))["x_bar"], npp(x, torch.tensor([[0.9]]))["x_bar"])


def test_without_qa_one_map_serves_every_q() -> None:
    npp = _trained_looking(variant="gain")
    assert not npp.quantization_adaptive and not npp.config.quantization_adaptive
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        plain = npp(x)["x_bar"]
        assert not torch.equal(plain, x)
        assert torch.equal(npp(x, torch.tensor([[0.3]]))["x_bar"], plain)
        assert torch.equal(npp(x, torch.tensor([[0.9]]))["x_bar"], plain)


@pytest.mark.parametrize(("variant", "size"), [("gain_qa", (1, 1)), ("gain_qa", (17, 13)), ("gain_qa", (64, 32)),
                                               ("gain_qa_lite0", (1, 1)), ("gain_qa_lite0", (45, 61)),
                                               ("gain_qa_certainty", (45, 61))])
def test_torchscript_matches_eager(variant: str, size: tuple[int, int]) -> None:
    npp = _trained_looking(variant=variant)
    x = torch.rand(2, 3, *size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        scripted = torch.jit.script(npp)
    with torch.no_grad():
        assert torch.allclose(scripted(x, COND)["x_bar"], npp(x, COND)["x_bar"], atol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_it_exports_with_parity(tmp_path: Path, variant: str) -> None:
    npp = _trained_looking(variant=variant)
    ckpt = tmp_path / "gain.pt"
    torch.save({"state_dict": npp.state_dict(), "variant": variant, "run_id": "gain-test"}, ckpt)
    m = export_artifact(variant, tmp_path / "art", checkpoint=ckpt,
                        options=ExportOptions(parity_kodak=1, parity_kodak_crop=64))
    assert m.variant == variant and m.quantization_adaptive == (variant != "gain")
    assert m.parameters == count_parameters(npp) and max(m.parity.values()) <= 1e-4
    x = np.random.default_rng(3).random((1, 3, 45, 61), dtype=np.float32)
    cond = np.array([[0.7]], dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "art" / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {"image": x, "cond": cond} if m.quantization_adaptive else {"image": x}
    got = session.run(["x_bar"], inputs)[0]
    with torch.no_grad():
        ref = npp(torch.from_numpy(x), torch.from_numpy(cond))["x_bar"].numpy()
    assert np.abs(got - ref).max() <= 1e-4
