from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.datasets import CocoDataset, open_dataset
from shared.tasks import DetectionOutput, DetectionTarget, TaskModel, get_task

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def yolo() -> TaskModel:
    return get_task("yolov5n")


@pytest.fixture(scope="module")
def coco2(data_dir: Path) -> CocoDataset:
    ds = open_dataset("coco", data_dir / "coco", split="val2017", limit=2)
    assert isinstance(ds, CocoDataset)
    return ds


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_real_image_boxes_are_in_original_coordinates(yolo: TaskModel, coco2: CocoDataset) -> None:
    sample = coco2[0]
    rgb = sample.load()
    (out,) = yolo.predict_detection([rgb])
    assert isinstance(out, DetectionOutput) and out.image_size == rgb.shape[:2]
    h, w = rgb.shape[:2]
    assert len(out) > 0 and out.boxes.dtype == np.float32
    assert (out.boxes[:, [0, 2]] >= 0).all() and (out.boxes[:, [0, 2]] <= w).all()
    assert (out.boxes[:, [1, 3]] >= 0).all() and (out.boxes[:, [1, 3]] <= h).all()
    gt = DetectionTarget.from_coco(sample.target.annotations)
    confident = out.scores > 0.5
    overlaps = iou(out.boxes[confident], gt.boxes.numpy())
    best = overlaps.max(axis=1)
    assert (best > 0.5).mean() >= 0.75  # most confident boxes sit on a ground-truth object
    j = overlaps.argmax(axis=1)
    same_class = out.category_ids[confident] == gt.category_ids.numpy()[j]
    assert same_class[best > 0.7].all()
    res = out.to_coco_results(sample.target.image_id)
    assert res[0]["image_id"] == sample.target.image_id and len(res[0]["bbox"]) == 4
    assert res[0]["category_id"] in coco2.category_ids


def test_matches_golden(yolo: TaskModel, coco2: CocoDataset) -> None:
    golden = json.loads((GOLDEN / "yolov5n_val2.json").read_text())
    outs = yolo.predict_detection([s.load() for s in coco2])
    for out, ref in zip(outs, golden["detections"], strict=True):
        assert abs(len(out) - ref["count"]) <= 3
        n = len(ref["scores"])
        np.testing.assert_allclose(out.scores[:n], ref["scores"], atol=2e-3)
        np.testing.assert_allclose(out.boxes[:n], ref["boxes"], atol=1.0)
        assert out.category_ids[:n].tolist() == ref["category_ids"]
        assert all(
            n_ == yolo.class_names[list(yolo.category_ids).index(c)]  # type: ignore[attr-defined]
            for n_, c in zip(out.names, out.category_ids, strict=True)
        )


def test_loss_gradient_reaches_input(yolo: TaskModel, coco2: CocoDataset) -> None:
    sample = coco2[0]
    rgb = sample.load()[:320, :416]  # a crop keeps it quick; GT boxes in the same pixels
    pristine = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    x = pristine.clone().requires_grad_()
    gt = DetectionTarget.from_coco(sample.target.annotations)
    terms = yolo.loss(x, [gt])
    assert set(terms) == {"loss", "box", "obj", "cls"} and terms["loss"] > 0
    terms["loss"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # distillation: pseudo ground truth from the pristine image; loss grows when the image degrades
    pseudo = yolo.distill_target(pristine)
    assert len(pseudo[0].boxes) > 0
    clean = float(yolo.loss(pristine, pseudo)["loss"])
    noisy = float(yolo.loss((pristine + 0.3 * torch.randn_like(pristine)).clamp(0, 1), pseudo)["loss"])
    assert noisy > clean


def test_importing_yolov5_leaves_pil_and_codec_errors_alone() -> None:
    from PIL import Image

    from shared.codecs import CorruptStreamError, get_codec
    from shared.tasks.yolov5n import _import_yolov5

    before = Image.open
    _import_yolov5()
    assert Image.open is before
    with pytest.raises(CorruptStreamError):
        get_codec("avif").decode(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40)
