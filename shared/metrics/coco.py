"""COCO box AP: pycocotools ``COCOeval`` (bbox, area "all", 100 detections), and
:class:`CocoPerImage`, which reproduces COCOeval's ``accumulate`` step from its per-image matches
with image weights, so a bootstrap replicate costs milliseconds instead of a full COCOeval; with
unit weights it equals COCOeval exactly (tested). Detections are
:class:`shared.tasks.outputs.DetectionOutput`; their COCO results records come from
:meth:`~shared.tasks.outputs.DetectionOutput.to_coco_results`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.tasks.outputs import DetectionOutput


def coco_results(detections: Mapping[int, DetectionOutput]) -> list[dict[str, Any]]:
    """COCO "results" records for ``{image_id: detections}``."""
    return [r for image_id, det in detections.items() for r in det.to_coco_results(image_id)]


@dataclass(frozen=True)
class CocoScores:
    map: float  # AP@[.5:.95], area all, 100 dets
    ap50: float
    ap75: float
    stats: tuple[float, ...]  # COCOeval.stats (12 numbers) when computed by COCOeval, else ()


def _run_cocoeval(coco_gt: Any, detections: Mapping[int, DetectionOutput], image_ids: Sequence[int]) -> Any:
    from pycocotools.cocoeval import COCOeval

    results = coco_results(detections)
    if not results:
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress; keep logs clean
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.evaluate()
    return ev


def coco_map(coco_gt: Any, detections: Mapping[int, DetectionOutput], image_ids: Sequence[int]) -> CocoScores:
    """mAP@[.5:.95], AP50 and AP75 with pycocotools COCOeval over ``image_ids``."""
    ev = _run_cocoeval(coco_gt, detections, image_ids)
    if ev is None:
        return CocoScores(0.0, 0.0, 0.0, ())
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    stats = tuple(float(v) for v in ev.stats)
    return CocoScores(stats[0], stats[1], stats[2], stats)


class CocoPerImage:
    """COCOeval's per-image matches kept so that AP can be recomputed for weighted image sets.

    ``score(weights)`` reproduces ``COCOeval.accumulate`` (area "all", maxDets 100, 101 recall
    points, precision envelope, searchsorted on recall) with each image counted ``weights[i]``
    times — a bootstrap resample is a weight vector of multiplicities.
    """

    def __init__(self, coco_gt: Any, detections: Mapping[int, DetectionOutput], image_ids: Sequence[int]) -> None:
        self.image_ids = sorted(int(i) for i in image_ids)
        self._index = {iid: n for n, iid in enumerate(self.image_ids)}
        self._cats: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.iou_thresholds = np.linspace(0.5, 0.95, 10)
        self.rec_thresholds = np.linspace(0.0, 1.0, 101)
        ev = _run_cocoeval(coco_gt, detections, image_ids)
        if ev is None:
            # No detections: AP is 0 for every category that has ground truth.
            self._empty_cats = self._count_gt(coco_gt)
            return
        self._empty_cats = np.zeros((0, len(self.image_ids)))
        p = ev.params
        n_img, n_area = len(p.imgIds), len(p.areaRng)
        max_det = p.maxDets[-1]
        for k in range(len(p.catIds)):
            entries = [(i, ev.evalImgs[k * n_area * n_img + i]) for i in range(n_img)]
            entries = [(i, e) for i, e in entries if e is not None]
            if not entries:
                continue
            scores = np.concatenate([e["dtScores"][:max_det] for _, e in entries])
            det_img = np.concatenate([np.full(len(e["dtScores"][:max_det]), i) for i, e in entries])
            order = np.argsort(-scores, kind="mergesort")
            dtm = np.concatenate([e["dtMatches"][:, :max_det] for _, e in entries], axis=1)[:, order]
            dtig = np.concatenate([e["dtIgnore"][:, :max_det] for _, e in entries], axis=1)[:, order]
            gt_count = np.zeros(n_img)
            for i, e in entries:
                gt_count[i] += np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
            tps = np.logical_and(dtm, np.logical_not(dtig)).astype(np.float64)
            fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtig)).astype(np.float64)
            self._cats.append((det_img[order], tps, fps, gt_count))

    def _count_gt(self, coco_gt: Any) -> np.ndarray:
        rows = []
        for cat in coco_gt.getCatIds():
            counts = np.zeros(len(self.image_ids))
            for ann in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=self.image_ids, catIds=[cat], iscrowd=None)):
                if not ann.get("iscrowd", 0) and not ann.get("ignore", 0):
                    counts[self._index[ann["image_id"]]] += 1
            rows.append(counts)
        return np.asarray(rows)

    def score(self, weights: np.ndarray | None = None) -> tuple[float, float]:
        """(mAP@[.5:.95], AP50) with image i counted ``weights[i]`` times (default: once each)."""
        w = np.ones(len(self.image_ids)) if weights is None else np.asarray(weights, dtype=np.float64)
        per_cat: list[np.ndarray] = []  # each (T, R)
        for det_img, tps, fps, gt_count in self._cats:
            npig = float(gt_count @ w)
            if npig == 0:
                continue
            wd = w[det_img]
            tp_sum = np.cumsum(tps * wd, axis=1)
            fp_sum = np.cumsum(fps * wd, axis=1)
            q = np.zeros((len(self.iou_thresholds), len(self.rec_thresholds)))
            nd = tp_sum.shape[1]
            if nd:
                rc = tp_sum / npig
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(q.shape[0]):
                    idx = np.searchsorted(rc[t], self.rec_thresholds, side="left")
                    ok = idx < nd
                    q[t, ok] = env[t, idx[ok]]
            per_cat.append(q)
        for counts in self._empty_cats:
            if float(counts @ w) > 0:
                per_cat.append(np.zeros((len(self.iou_thresholds), len(self.rec_thresholds))))
        if not per_cat:
            return float("nan"), float("nan")
        prec = np.stack(per_cat)  # (K, T, R)
        return float(prec.mean()), float(prec[:, 0, :].mean())
