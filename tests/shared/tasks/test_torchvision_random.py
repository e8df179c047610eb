"""The paper's torchvision models with RANDOM weights (none exist offline): shapes, outputs and
loss plumbing only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.tasks import ClassificationOutput, DetectionOutput, DetectionTarget, get_task

DETECTORS = ["fcos_resnet50_fpn", "fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn"]
CLASSIFIERS = ["resnet50", "resnext50_32x4d", "swin_t", "vit_b_16"]


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_outputs_and_loss(name: str) -> None:
    torch.manual_seed(0)
    model = get_task(name, random_init=True, min_size=128, max_size=160, score_thresh=0.0)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), rng.integers(0, 256, (150, 100, 3), dtype=np.uint8)]
    outs = model.predict(images)
    for out, im in zip(outs, images, strict=True):
        assert isinstance(out, DetectionOutput) and out.image_size == im.shape[:2]
        assert out.boxes.shape == (len(out), 4) and len(out.names) == len(out)
        if len(out):  # boxes come back in the original image's pixels
            assert out.boxes[:, 2].max() <= im.shape[1] + 1e-3 and out.boxes[:, 3].max() <= im.shape[0] + 1e-3
            assert set(out.category_ids.tolist()) <= set(range(1, 91))
    x = torch.rand(2, 3, 96, 128, requires_grad=True)
    target = [
        DetectionTarget(torch.tensor([[10.0, 20.0, 60.0, 80.0]]), torch.tensor([1])),
        DetectionTarget(torch.tensor([[5.0, 5.0, 100.0, 90.0], [30.0, 30.0, 50.0, 60.0]]), torch.tensor([3, 18])),
    ]
    terms = model.loss(x, target)
    assert "loss" in terms and len(terms) > 2
    terms["loss"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not model.module.training and all(not p.requires_grad for p in model.module.parameters())


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_outputs_and_loss(name: str) -> None:
    torch.manual_seed(0)
    model = get_task(name, random_init=True)
    with torch.no_grad():  # ViT initialises its head to zeros: logits would not depend on the input
        for p in model.module.parameters():
            if not p.any():
                p.normal_(0, 0.01)
    (out,) = model.predict([np.random.default_rng(0).integers(0, 256, (100, 140, 3), dtype=np.uint8)])
    assert isinstance(out, ClassificationOutput) and out.probs.shape == (1000,) and len(out.top) == 5
    x = torch.rand(1, 3, 112, 150, requires_grad=True)
    terms = model.loss(x, torch.tensor([7]))
    terms["loss"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
