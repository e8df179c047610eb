"""COCO box mAP of detections with pycocotools' COCOeval (the standard scorer)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

from shared.tasks.outputs import DetectionOutput


def coco_map(outputs: Sequence[DetectionOutput], image_ids: Sequence[int], coco: Any) -> dict[str, float]:
    """mAP@[.5:.95], mAP@.5 and mAP@.75 of `outputs` (one per image id) against `coco`'s
    annotations, evaluated on exactly these images."""
    from pycocotools.cocoeval import COCOeval

    results = [r for out, img_id in zip(outputs, image_ids, strict=True) for r in out.to_coco_results(img_id)]
    if not results:
        return {"map": 0.0, "map50": 0.0, "map75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and table
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map": float(evaluator.stats[0]), "map50": float(evaluator.stats[1]), "map75": float(evaluator.stats[2])}
