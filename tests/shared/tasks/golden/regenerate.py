"""Regenerate the golden files of the task-model tests (run after a deliberate change):

.venv/bin/python -m tests.shared.tasks.golden.regenerate
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shared.datasets import open_dataset
from shared.paths import shared_data_dir
from shared.tasks import get_task

HERE = Path(__file__).parent
N_CLASSIFY = 50
N_DETECT = 2


def classification_golden(name: str) -> dict:
    ds = open_dataset("imagenet_folder", shared_data_dir() / "data" / "imagenet" / "val", limit=N_CLASSIFY)
    outs = get_task(name).predict_classification([s.load() for s in ds])
    return {
        "dataset": ds.describe(),
        "ids": ds.ids,
        "top1": [o.top1 for o in outs],
        "labels": [s.target for s in ds],
        # probabilities of the first 5 images at their top-5 classes
        "top5": [[[i, round(p, 6)] for i, _, p in o.top] for o in outs[:5]],
    }


def detection_golden(name: str) -> dict:
    ds = open_dataset("coco", shared_data_dir() / "data" / "coco", split="val2017", limit=N_DETECT)
    outs = get_task(name).predict_detection([s.load() for s in ds])
    return {
        "dataset": ds.describe(),
        "ids": ds.ids,
        "detections": [
            {
                "count": len(o),
                "boxes": np.round(o.boxes[:10], 2).tolist(),
                "scores": np.round(o.scores[:10], 5).tolist(),
                "category_ids": o.category_ids[:10].tolist(),
            }
            for o in outs
        ],
    }


def main() -> None:
    for name in ("efficientnet_lite0", "mobilenet_v2"):
        (HERE / f"{name}_val{N_CLASSIFY}.json").write_text(json.dumps(classification_golden(name), indent=1))
    (HERE / f"yolov5n_val{N_DETECT}.json").write_text(json.dumps(detection_golden("yolov5n"), indent=1))


if __name__ == "__main__":
    main()
