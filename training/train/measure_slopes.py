"""Measure the plain codec's rate–distortion points that set λ(q) of the training loss.

BPG (our encoder, level 8) at q = 22, 25, …, 46 on the 224×224 centre crops of ImageNet train
images 500..699 (sorted; the training distribution, never the validation set), the frozen task
model on each decoded crop: mean bpp (Σ bits / Σ pixels), mean KL from the prediction on the
pristine crop (label-free) and mean cross-entropy with the labels. Writes the points in the
``points`` layout of a sweep JSON, which :meth:`training.train.loss.LambdaTable.from_sweep` reads::

    python -m training.train.measure_slopes --out configs/training/bpg_efficientnet_lite0_points.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.codecs.bpg.codec import BpgCodec
from shared.pipeline import EncoderPool, round_trip_batch
from shared.tasks import get_task
from training.proxy.data import FIT_QPS, imagenet_train_files
from training.train.data import load_picture
from training.train.loss import LambdaTable, RatePoint, per_image_distortion


def _tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--task", default="efficientnet_lite0")
    ap.add_argument("--first", type=int, default=500)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--resize", type=int, default=None,
                    help="squash each picture to RESIZE×RESIZE first (as a run's data.resize does)")
    ap.add_argument("--level", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    files = imagenet_train_files()[args.first : args.first + args.images]
    labels_by_file = {r["file"]: int(r["label"]) for r in csv.DictReader((files[0].parent / "labels.csv").open())}
    crops = []
    for f in files:
        rgb = load_picture(f, args.crop, args.resize)  # as training loads it
        h, w = rgb.shape[:2]
        s = args.crop
        crops.append(np.ascontiguousarray(rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]))
    labels = torch.tensor([labels_by_file[f.name] for f in files])
    task = get_task(args.task)
    codec = BpgCodec(level=args.level)
    pixels = float(sum(c.shape[0] * c.shape[1] for c in crops))
    with torch.no_grad():
        ref = torch.cat([task.distill_target(_tensor(crops[i : i + 25])) for i in range(0, len(crops), 25)])
    points: list[dict[str, Any]] = []
    with EncoderPool(workers=args.workers) as pool:
        for q in FIT_QPS:
            decoded, bits = round_trip_batch(crops, codec, q, pool=pool)
            kl, ce = [], []
            with torch.no_grad():
                for i in range(0, len(decoded), 25):
                    x = _tensor(decoded[i : i + 25])
                    kl.append(per_image_distortion(task, x, ref[i : i + 25], "kl"))
                    ce.append(per_image_distortion(task, x, labels[i : i + 25], "ce"))
            point = {"codec": "bpg", "preprocessing": "none", "quality": q, "bpp": float(bits.sum() / pixels),
                     "kl": float(torch.cat(kl).mean()), "ce": float(torch.cat(ce).mean()), "n_images": len(crops)}
            points.append(point)
            print(json.dumps(point), f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    squash = f" of the pictures squashed to {args.resize}×{args.resize}" if args.resize else ""
    doc = {"what": f"BPG level {args.level} on {len(crops)} ImageNet train centre crops {args.crop}{squash} "
                   f"(sorted files {args.first}..{args.first + len(crops) - 1}), task {args.task}; KL from the "
                   "pristine crop's "
                   "prediction, CE with labels",
           "command": "python -m training.train.measure_slopes " + " ".join(argv or sys.argv[1:]),
           "codec_settings": codec.settings(), "points": points}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for d in ("kl", "ce"):
        try:
            t = LambdaTable.from_points([RatePoint(p["quality"], p["bpp"], p[d]) for p in points], d, str(args.out))
            print(d, "λ by q:", dict(zip(t.qualities, (round(v, 3) for v in t.lambdas), strict=True)), file=sys.stderr)
        except ValueError as exc:
            print(f"{d}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
