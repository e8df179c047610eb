"""Reading sweep outputs back: curves (one per codec × options × preprocessing) and their
per-image data as :class:`~shared.metrics.bdrate.PerImageCurve` for paired bootstraps.

Several sweep folders can be combined (e.g. one per codec) when they scored the same images with
the same model; anything else raises :class:`ResultsError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.registry import EVAL_METRICS
from shared.metrics.bdrate import PerImageCurve
from shared.metrics.coco import CocoPerImage
from shared.metrics.image import PSNR_IDENTICAL_DB
from shared.tasks.outputs import DetectionOutput


class ResultsError(ValueError):
    """Sweep results are missing, inconsistent, or lack the requested metric."""


def curve_label(point: dict[str, Any]) -> str:
    label = str(point["codec"])
    if point.get("options"):
        label += "[" + ",".join(f"{k}={v}" for k, v in sorted(point["options"].items())) + "]"
    if point.get("preprocessing", "none") != "none":
        label += f"+{point['preprocessing']}"
    return label


@dataclass
class Curve:
    label: str
    sweep: SweepData
    points: list[dict[str, Any]] = field(default_factory=list)  # summaries, sorted by bpp

    @property
    def codec(self) -> str:
        return str(self.points[0]["codec"])

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.points[0].get("settings", {}))

    def rates(self) -> np.ndarray:
        return np.array([p["bpp"] for p in self.points], dtype=np.float64)

    def metric(self, name: str) -> np.ndarray:
        if name not in self.points[0] or self.points[0][name] is None:
            raise ResultsError(f"curve {self.label!r} has no metric {name!r}; it has: "
                               f"{', '.join(k for k in self.sweep.metrics if k in self.points[0])}")
        return np.array([np.nan if p[name] is None else p[name] for p in self.points], dtype=np.float64)

    def point_images(self, point: dict[str, Any]) -> list[dict[str, Any]]:
        path = self.sweep.path / "points" / f"{point['id']}.json"
        if not path.is_file():
            raise ResultsError(f"per-image results not found: {path}")
        images: list[dict[str, Any]] = json.loads(path.read_text())["images"]
        return images

    def image_ids(self) -> list[str]:
        """The ids of the images this curve's points were measured on."""
        return [str(r["id"]) for r in self.point_images(self.points[0])]

    def per_image(self, metric: str) -> PerImageCurve:
        """Per-image data of this curve for ``metric`` (see :class:`PerImageCurve`)."""
        info = EVAL_METRICS.get(metric)
        per_point = [self.point_images(p) for p in self.points]
        ids = [r["id"] for r in per_point[0]]
        for imgs in per_point[1:]:
            if [r["id"] for r in imgs] != ids:
                raise ResultsError(f"curve {self.label!r}: points cover different images")
        bits = np.array([[r["bits"] for r in imgs] for imgs in per_point], dtype=np.float64)
        pixels = np.array([r["pixels"] for r in per_point[0]], dtype=np.float64)
        labels = [str(p["quality"]) for p in self.points]

        def column(key: str) -> np.ndarray:
            try:
                return np.array([[np.nan if r[key] is None else float(r[key]) for r in imgs] for imgs in per_point])
            except KeyError:
                raise ResultsError(f"curve {self.label!r} has no per-image {key!r} ({info.label})") from None

        simple = {"top1": "correct1", "top5": "correct5", "ce": "ce", "kl": "kl", "agreement": "agree",
                  "msssim": "msssim", "psnr": "psnr"}
        if metric in simple:
            vals = column(simple[metric])
            if metric == "psnr":
                # older results stored an identical image's PSNR as null
                vals = np.minimum(np.where(np.isnan(vals), PSNR_IDENTICAL_DB, vals), PSNR_IDENTICAL_DB)
            return PerImageCurve(bits, pixels, values=vals, labels=labels, ids=ids)
        if metric == "f1":
            tp, fp, fn = column("tp"), column("fp"), column("fn")
            return PerImageCurve(bits, pixels, numerator=2 * tp, denominator=2 * tp + fp + fn, labels=labels,
                                 ids=ids)
        if metric == "det_distortion":
            matched, mass = column("soft_matched"), column("soft_mass")
            return PerImageCurve(bits, pixels, numerator=mass - 2 * matched, denominator=mass, labels=labels,
                                 ids=ids)
        if metric in ("map", "ap50"):
            coco = self.sweep.coco
            image_ids = self.sweep.coco_image_ids(ids)
            evals = [
                CocoPerImage(coco, {iid: DetectionOutput.from_json(r["detections"])
                                    for iid, r in zip(image_ids, imgs, strict=True)}, image_ids)
                for imgs in per_point
            ]
            # CocoPerImage orders images by id; map weights from our order to its order.
            order = [evals[0].image_ids.index(i) for i in image_ids]
            inv = np.argsort(order)
            pick = 0 if metric == "map" else 1

            def aggregate(p: int, w: np.ndarray) -> float:
                return evals[p].score(w[inv])[pick]

            return PerImageCurve(bits, pixels, aggregate=aggregate, labels=labels, ids=ids)
        raise ResultsError(f"no per-image form for metric {metric!r}")


@dataclass
class SweepData:
    path: Path
    summary: dict[str, Any]

    @property
    def metrics(self) -> list[str]:
        return list(self.summary.get("metrics", []))

    @property
    def dataset(self) -> dict[str, Any]:
        return dict(self.summary["dataset"])

    @property
    def task(self) -> dict[str, Any]:
        return dict(self.summary["task"])

    @cached_property
    def coco(self) -> Any:
        from shared.datasets import open_dataset

        cfg = self.summary["config"]
        ds = open_dataset(cfg["dataset_kind"], cfg["dataset"], limit=cfg.get("limit"),
                          **(cfg.get("dataset_options") or {}))
        coco = getattr(ds, "coco", None)
        if coco is None:
            raise ResultsError(f"{self.path}: dataset {cfg['dataset']} has no COCO annotations")
        self._coco_ids = {s.id: int(s.target.image_id) for s in ds}
        return coco

    def coco_image_ids(self, sample_ids: list[str]) -> list[int]:
        _ = self.coco
        return [self._coco_ids[s] for s in sample_ids]


def load_sweep(path: str | Path) -> SweepData:
    p = Path(path)
    f = p / "sweep.json" if p.is_dir() else p
    if not f.is_file():
        raise ResultsError(f"sweep results not found: {f}")
    try:
        summary = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{f}: not valid JSON ({exc})") from exc
    if "points" not in summary or "dataset" not in summary:
        raise ResultsError(f"{f}: not a prepicm sweep result")
    return SweepData(f.parent, summary)


def load_curves(paths: list[str | Path]) -> dict[str, Curve]:
    """All curves of one or more sweep folders (same model), keyed by label. Which images each
    curve covers is checked where curves are paired (:meth:`shared.metrics.bdrate.PerImageCurve.reordered`)."""
    curves: dict[str, Curve] = {}
    ref: tuple[str, str] | None = None
    for path in paths:
        sw = load_sweep(path)
        key = (sw.task["name"], sw.task.get("weights_identity", sw.task["weights"]))
        if ref is None:
            ref = key
        elif key != ref:
            raise ResultsError(f"{sw.path} scored a different model than {paths[0]}; "
                               "curves can only be combined for the same model")
        for point in sw.summary["points"]:
            label = curve_label(point)
            c = curves.setdefault(label, Curve(label, sw))
            if c.sweep is not sw:
                raise ResultsError(f"curve {label!r} appears in both {c.sweep.path} and {sw.path}")
            c.points.append(point)
    for c in curves.values():
        c.points.sort(key=lambda p: p["bpp"])
    if not curves:
        raise ResultsError(f"no finished points in {', '.join(str(p) for p in paths)}")
    return curves
