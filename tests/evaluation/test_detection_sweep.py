"""A tiny real detection sweep (YOLOv5n on 2 COCO val images): COCO mAP, pseudo-GT F1 and the
continuous distortion, and their per-image forms used by the paired bootstrap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.results import load_curves
from evaluation.sweep import CodecSpec, SweepConfig, run_sweep
from shared.metrics.bdrate import bootstrap_bd_rate
from shared.metrics.coco import CocoPerImage, coco_map
from shared.tasks.outputs import DetectionOutput


def test_detection_sweep_metrics_and_per_image_forms(tmp_path: Path, coco_val: Path) -> None:
    tasks = pytest.importorskip("shared.tasks")
    model = tasks.get_task("yolov5n")
    cfg = SweepConfig("coco", str(coco_val), "yolov5n", [CodecSpec("jpeg", [10, 90])], out=str(tmp_path / "o"),
                      limit=2, cache_dir=str(tmp_path / "c"), workers=1, progress=False)
    res = run_sweep(cfg, model=model)
    s = res.summary
    assert s["metrics"] == ["bpp", "map", "ap50", "ap75", "f1", "det_distortion", "psnr", "msssim"]
    assert s["pristine"]["f1"] == 1.0 and s["pristine"]["det_distortion"] == 0.0
    curves = load_curves([tmp_path / "o"])
    c = curves["jpeg"]
    sweep_ids = json.loads((tmp_path / "o" / "points" / f"{c.points[0]['id']}.json").read_text())["images"]
    image_ids = c.sweep.coco_image_ids([r["id"] for r in sweep_ids])
    for metric in ("map", "ap50", "f1", "det_distortion"):
        per = c.per_image(metric)
        ones = np.ones(per.n_images)
        # The per-image form reproduces the point summary on the full image set.
        assert per.metrics(ones) == pytest.approx(c.metric(metric), abs=1e-9)
    # The stored detections re-scored by COCOeval give the stored mAP.
    dets = {iid: DetectionOutput.from_json(r["detections"]) for iid, r in zip(image_ids, sweep_ids, strict=True)}
    assert coco_map(c.sweep.coco, dets, image_ids).map == pytest.approx(c.points[0]["map"], abs=1e-12)
    assert CocoPerImage(c.sweep.coco, dets, image_ids).score()[0] == pytest.approx(c.points[0]["map"], abs=1e-12)
    boot = bootstrap_bd_rate(c.per_image("det_distortion"), c.per_image("det_distortion"), higher_is_better=False,
                             n=20)
    assert boot.estimate.value == 0.0 and boot.low == boot.high == 0.0
