"""The shallow local-filter NPP (``local_qa``): identity start, no position dependence, export."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.export import ExportOptions, export_artifact
from training.npp import LocalNPP, build_npp, count_parameters
from training.train.loop import identity_init

COND = torch.tensor([[25 / 51], [44 / 51]])


def _trained_looking(seed: int = 0) -> LocalNPP:
    """local_qa with a non-zero last layer, as after training."""
    torch.manual_seed(seed)
    npp = build_npp("local_qa")
    assert isinstance(npp, LocalNPP)
    with torch.no_grad():
        npp.out.weight.normal_(std=0.05)
    return npp.eval()


def test_it_is_small() -> None:
    assert count_parameters(build_npp("local_qa")) == 13_142


def test_identity_init_is_exact_and_every_layer_then_learns() -> None:
    npp = identity_init(build_npp("local_qa")).train()
    x = torch.rand(2, 3, 40, 36)
    out = npp(x, COND)["x_bar"]
    assert torch.equal(out, x)
    opt = torch.optim.SGD(npp.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        ((npp(x, COND)["x_bar"] - 0.5) ** 2).sum().backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in npp.parameters())


def test_a_shift_of_the_picture_shifts_the_output() -> None:
    """Translation-equivariant away from the borders: the filter cannot act on where a region is."""
    npp = _trained_looking()
    x = torch.rand(1, 3, 64, 64)
    cond = torch.tensor([[0.6]])
    with torch.no_grad():
        a = npp(x, cond)["x_bar"]
        b = npp(torch.roll(x, shifts=(5, 7), dims=(2, 3)), cond)["x_bar"]
    # the 17×17 receptive field plus the shift stays clear of both pictures' borders
    assert torch.allclose(torch.roll(a, shifts=(5, 7), dims=(2, 3))[..., 20:50, 20:50], b[..., 20:50, 20:50], atol=1e-6)


def test_train_and_eval_mode_are_one_network() -> None:
    npp = _trained_looking()
    x = torch.rand(2, 3, 24, 30)
    with torch.no_grad():
        assert torch.equal(npp.train()(x, COND)["x_bar"], npp.eval()(x, COND)["x_bar"])


def test_conditioning_is_required_and_changes_the_output() -> None:
    npp = _trained_looking()
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="pass cond"):
        npp(x)
    with torch.no_grad():
        assert not torch.equal(npp(x, torch.tensor([[0.3]]))["x_bar"], npp(x, torch.tensor([[0.9]]))["x_bar"])


@pytest.mark.parametrize("size", [(5, 5), (17, 13), (64, 32)])
def test_torchscript_matches_eager(size: tuple[int, int]) -> None:
    npp = _trained_looking()
    x = torch.rand(2, 3, *size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        scripted = torch.jit.script(npp)
    with torch.no_grad():
        assert torch.allclose(scripted(x, COND)["x_bar"], npp(x, COND)["x_bar"], atol=1e-6)


def test_it_exports_with_parity(tmp_path: Path) -> None:
    npp = _trained_looking()
    ckpt = tmp_path / "local.pt"
    torch.save({"state_dict": npp.state_dict(), "variant": "local_qa", "run_id": "local-test"}, ckpt)
    m = export_artifact("local_qa", tmp_path / "art", checkpoint=ckpt,
                        options=ExportOptions(parity_kodak=1, parity_kodak_crop=64))
    assert m.variant == "local_qa" and m.quantization_adaptive and m.parameters == 13_142
    assert m.input_names() == ["image", "cond"] and max(m.parity.values()) <= 1e-4
    x = np.random.default_rng(3).random((1, 3, 45, 61), dtype=np.float32)
    cond = np.array([[0.7]], dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "art" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["x_bar"], {"image": x, "cond": cond})[0]
    with torch.no_grad():
        ref = npp(torch.from_numpy(x), torch.from_numpy(cond))["x_bar"].numpy()
    assert np.abs(got - ref).max() <= 1e-4
