from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.datasets import open_dataset
from shared.tasks import ClassificationOutput, InvalidTargetError, TaskModel, get_task

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def val50(data_dir: Path) -> list[np.ndarray]:
    ds = open_dataset("imagenet_folder", data_dir / "imagenet" / "val", limit=50)
    return [s.load() for s in ds]


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v2"])
def test_matches_golden_on_first_50_val_images(name: str, val50: list[np.ndarray]) -> None:
    golden = json.loads((GOLDEN / f"{name}_val50.json").read_text())
    model = get_task(name)
    outs = model.predict_classification(val50)
    assert all(isinstance(o, ClassificationOutput) for o in outs)
    assert outs[0].probs.shape == (1000,) and outs[0].probs.dtype == np.float32
    assert abs(float(outs[0].probs.sum()) - 1) < 1e-4
    top1 = [o.top1 for o in outs]
    assert sum(a != b for a, b in zip(top1, golden["top1"], strict=True)) <= 1
    for out, ref in zip(outs[:5], golden["top5"], strict=True):
        for idx, p in ref:
            assert out.probs[idx] == pytest.approx(p, abs=2e-3)
    # and it is a real classifier: golden top-1 on these 50 is 0.86 (lite0) / 0.90 (mnv2)
    acc = np.mean(np.array(top1) == np.array(golden["labels"]))
    assert acc >= 0.8
    js = outs[0].to_json()
    assert js["top"][0]["index"] == top1[0] and isinstance(js["top"][0]["name"], str)


@pytest.fixture(scope="module")
def lite0() -> TaskModel:
    return get_task("efficientnet_lite0")


def test_losses_reach_the_input(lite0: TaskModel, val50: list[np.ndarray]) -> None:
    pristine = torch.stack([torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in val50[:2]])
    x = (pristine + 0.03 * torch.randn_like(pristine)).clamp(0, 1).requires_grad_()
    terms = lite0.loss(x, torch.tensor([1, 2]))
    assert set(terms) == {"loss", "cross_entropy"}
    terms["loss"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in lite0.module.parameters())  # the task net stays frozen

    ref = lite0.distill_target(pristine)
    assert ref.shape == (2, 1000) and not ref.requires_grad
    x.grad = None
    kl = lite0.loss(x, ref)
    kl["loss"].backward()
    assert x.grad is not None
    assert kl["kl"] > 0 and x.grad.abs().sum() > 0
    assert float(lite0.loss(pristine, ref)["kl"]) == pytest.approx(0, abs=1e-5)
    with pytest.raises(InvalidTargetError):
        lite0.loss(x, torch.zeros(2, 10))


def test_rejects_non_rgb(lite0: TaskModel) -> None:
    with pytest.raises(ValueError, match=r"H×W×3 uint8"):
        lite0.predict_classification([np.zeros((3, 32, 32), np.uint8)])
    with pytest.raises(ValueError, match=r"H×W×3 uint8"):
        lite0.predict_classification([np.zeros((32, 32, 3), np.float32)])


@pytest.mark.parametrize("size", [224, 227])
def test_read_window_bounds_what_reaches_the_network(size: int) -> None:
    from shared.tasks.classifiers import ClassifierPreprocess

    pre = ClassifierPreprocess()
    lo, hi = pre.read_window(size, margin=1)  # bilinear enlarging reaches one pixel past the centres
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    frame = torch.ones(1, 1, size, size, dtype=torch.bool)
    frame[..., lo:hi, lo:hi] = False
    outside = torch.where(frame, torch.rand_like(x), x)
    assert torch.equal(pre(outside), pre(x))  # nothing outside the window is read
    inside = x.clone()
    inside[..., lo + 1, size // 2] += 0.5
    assert not torch.equal(pre(inside), pre(x))
    assert pre.read_window(size) == (lo - 1, hi + 1)


def test_early_features_are_the_classifiers_own_activations(lite0: TaskModel) -> None:
    from shared.tasks.classifiers import ImageClassifier

    assert isinstance(lite0, ImageClassifier)
    early = lite0.early_features()
    x = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    seen: dict[str, torch.Tensor] = {}
    blocks = list(lite0.module.get_submodule("blocks").children())
    hooks = [blocks[k].register_forward_hook(lambda _m, _i, out, k=k: seen.__setitem__(str(k), out.clone()))
             for k in (2, 4)]
    with torch.no_grad():
        lite0.module((x - 0.5) / 0.5)  # the classifier's normalisation, no resize
        f8, f16 = early(x)
    for h in hooks:
        h.remove()
    assert f8.shape == (1, 40, 12, 10) and f16.shape == (1, 112, 6, 5)
    # (channels-last kernels in the classifier: equal to float rounding)
    assert torch.allclose(f8, seen["2"], atol=1e-4) and torch.allclose(f16, seen["4"], atol=1e-4)
    early.train()
    assert not early.training and not any(p.requires_grad for p in early.parameters())
    with pytest.raises(NotImplementedError, match="mobilenet_v2"):
        get_task("mobilenet_v2").early_features()  # type: ignore[attr-defined]


def test_certainty_is_how_sure_the_whole_frozen_classifier_is(lite0: TaskModel) -> None:
    from shared.tasks.classifiers import ImageClassifier

    assert isinstance(lite0, ImageClassifier)
    sure = lite0.certainty()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p = torch.softmax(lite0.module((x - 0.5) / 0.5).float(), 1)  # at 224 the squash is the identity
        got = sure(x)
    top = p.topk(2, dim=1).values
    entropy = -(p * p.log()).sum(1) / math.log(1000)
    assert torch.allclose(got, torch.stack([entropy, top[:, 0], top[:, 0] - top[:, 1]], 1), atol=1e-4)
    small = sure(torch.rand(1, 3, 40, 30))  # any size: squashed to the classifier's crop
    assert small.shape == (1, 3) and float(small.min()) >= 0 and float(small.max()) <= 1
    sure.train()
    assert not sure.training and not any(q.requires_grad for q in sure.parameters())
