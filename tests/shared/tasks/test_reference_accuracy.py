"""Uncompressed accuracy reproduces ../shared/data/README.md's reference numbers within ±1 point
(slow on CPU: run with --runslow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.datasets import CocoDataset, open_dataset
from shared.metrics.coco import coco_map
from shared.tasks import get_task


@pytest.mark.slow
@pytest.mark.parametrize("name,reference", [("efficientnet_lite0", 0.831), ("mobilenet_v2", 0.804)])
def test_imagenet_val_top1(name: str, reference: float, data_dir: Path) -> None:
    ds = open_dataset("imagenet_folder", data_dir / "imagenet" / "val")
    outs = get_task(name).predict_classification([s.load() for s in ds])
    top1 = np.mean([o.top1 == s.target for o, s in zip(outs, ds, strict=True)])
    assert top1 == pytest.approx(reference, abs=0.01)


@pytest.mark.slow
def test_yolov5n_coco_val_map(data_dir: Path) -> None:
    ds = open_dataset("coco", data_dir / "coco", split="val2017")
    assert isinstance(ds, CocoDataset)
    outs = get_task("yolov5n").predict_detection([s.load() for s in ds])
    m = coco_map(ds.coco, dict(zip(ds.image_ids, outs, strict=True)), ds.image_ids)
    assert m.map == pytest.approx(0.320, abs=0.01)
    assert m.ap50 == pytest.approx(0.512, abs=0.01)
