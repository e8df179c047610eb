"""Uncompressed accuracy and CPU speed of the offline task models on the shared data, to compare
with the reference numbers in ../shared/data/README.md.

    .venv/bin/python benchmarks/task_reference.py [--models efficientnet_lite0 mobilenet_v2 yolov5n] [--limit N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from shared.datasets import CocoDataset, open_dataset
from shared.metrics.coco import coco_map
from shared.paths import shared_data_dir
from shared.tasks import get_task, task_kind

REFERENCE = {"efficientnet_lite0": "top-1 0.831", "mobilenet_v2": "top-1 0.804", "yolov5n": "mAP 0.320"}


def classification(name: str, limit: int | None) -> tuple[str, str, float]:
    ds = open_dataset("imagenet_folder", shared_data_dir() / "data" / "imagenet" / "val", limit=limit)
    images = [s.load() for s in ds]
    model = get_task(name)
    t0 = time.perf_counter()
    outs = model.predict_classification(images)
    dt = time.perf_counter() - t0
    top1 = np.mean([o.top1 == s.target for o, s in zip(outs, ds, strict=True)])
    top5 = np.mean([s.target in [i for i, _, _ in o.top] for o, s in zip(outs, ds, strict=True)])
    return ds.describe(), f"top-1 {top1:.3f}  top-5 {top5:.3f}", len(ds) / dt


def detection(name: str, limit: int | None) -> tuple[str, str, float]:
    ds = open_dataset("coco", shared_data_dir() / "data" / "coco", split="val2017", limit=limit)
    assert isinstance(ds, CocoDataset)
    images = [s.load() for s in ds]
    model = get_task(name)
    t0 = time.perf_counter()
    outs = model.predict_detection(images)
    dt = time.perf_counter() - t0
    m = coco_map(ds.coco, dict(zip(ds.image_ids, outs, strict=True)), ds.image_ids)
    return ds.describe(), f"mAP {m.map:.3f}  mAP50 {m.ap50:.3f}  mAP75 {m.ap75:.3f}", len(ds) / dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(REFERENCE))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| model | data | measured | reference | images/s ({args.threads} threads) |")
    print("|---|---|---|---|---|")
    for name in args.models:
        run = classification if task_kind(name) == "classification" else detection
        data, measured, speed = run(name, args.limit)
        print(f"| {name} | {data} | {measured} | {REFERENCE.get(name, '-')} | {speed:.2f} |", flush=True)


if __name__ == "__main__":
    main()
