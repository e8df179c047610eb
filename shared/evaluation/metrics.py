"""Task metrics: classification accuracy and distortions, COCO detection AP, agreement with pristine.

Conventions (they are what the reports state):

- Classification works on probabilities ``(N, C)`` (softmax outputs). Cross-entropy with labels is
  ``−ln p[label]`` per image; KL from pristine is ``KL(p_pristine ‖ p_decoded) = Σ p_pristine ·
  ln(p_pristine / p_decoded)`` per image, in nats. Probabilities are clipped at ``PROB_FLOOR`` so
  that a zero probability gives a large but finite value.
- COCO mAP@[.5:.95] and AP50 are pycocotools ``COCOeval`` (bbox, area "all", 100 detections).
  :class:`CocoPerImage` reproduces COCOeval's ``accumulate`` step from its per-image matches with
  image weights, so a bootstrap replicate costs milliseconds instead of a full COCOeval; with unit
  weights it equals COCOeval exactly (tested).
- Pseudo ground truth (unlabelled images): detections on the decoded image are matched to the
  detections on the pristine image (same category, IoU ≥ ``MATCH_IOU`` = 0.5, greedy in order of
  pristine score, each decoded box used once, the one with the highest IoU chosen). Both sides are
  first filtered at ``F1_SCORE_THRESHOLD`` = 0.25 (YOLOv5's ``detect.py`` default). F1 over a set
  of images is micro-averaged: ``2·ΣTP / (2·ΣTP + ΣFP + ΣFN)``; an image with no boxes on either
  side counts nothing. Classifiers: top-1 agreement with the pristine top-1 class.
- Continuous detection distortion ("soft-F distortion"): both sides filtered at
  ``SOFT_SCORE_THRESHOLD`` = 0.05, matched as above, then
  ``D = 1 − 2·Σ_matched IoU·√(s_pristine·s_decoded) / (Σ s_pristine + Σ s_decoded)``
  with the sums over all images (micro average). Identical detections give D = 0; losing or adding
  a confident box, shrinking a score or shifting a box raises D smoothly in proportion to the
  scores involved, which resolves far smaller effects than mAP.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

PROB_FLOOR = 1e-12
MATCH_IOU = 0.5
F1_SCORE_THRESHOLD = 0.25
SOFT_SCORE_THRESHOLD = 0.05


class MetricError(ValueError):
    """Inputs to a metric are inconsistent (shapes, labels, missing images)."""


# ----------------------------------------------------------------------------- classification


def _probs2d(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2:
        raise MetricError(f"probabilities must be (N, C), got shape {p.shape}")
    return p


def _labels(labels: Sequence[int] | np.ndarray, n: int, c: int) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != n:
        raise MetricError(f"{y.shape[0]} labels for {n} predictions")
    if n and (y.min() < 0 or y.max() >= c):
        raise MetricError(f"labels must lie in 0..{c - 1}")
    return y


def topk_correct(probs: np.ndarray, labels: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Per image: is the label among the k highest-scoring classes? Ties count against the label
    (a class ranks above the label when its score is strictly higher, or equal with a lower index),
    which matches ``argsort``-based top-k of stable sorts."""
    p = _probs2d(probs)
    y = _labels(labels, p.shape[0], p.shape[1])
    label_score = p[np.arange(p.shape[0]), y][:, None]
    idx = np.arange(p.shape[1])[None, :]
    above = (p > label_score) | ((p == label_score) & (idx < y[:, None]))
    return np.asarray(above.sum(axis=1) < k)


def topk_accuracy(probs: np.ndarray, labels: Sequence[int] | np.ndarray, k: int = 1) -> float:
    c = topk_correct(probs, labels, k)
    return float(c.mean()) if c.size else float("nan")


def cross_entropy(probs: np.ndarray, labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-image cross-entropy ``−ln p[label]`` (nats)."""
    p = _probs2d(probs)
    y = _labels(labels, p.shape[0], p.shape[1])
    return np.asarray(-np.log(np.maximum(p[np.arange(p.shape[0]), y], PROB_FLOOR)))


def kl_divergence(reference: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-image ``KL(reference ‖ probs)`` in nats (reference = the pristine prediction)."""
    r = _probs2d(reference)
    q = _probs2d(probs)
    if r.shape != q.shape:
        raise MetricError(f"reference {r.shape} and prediction {q.shape} differ in shape")
    rr = np.maximum(r, PROB_FLOOR)
    qq = np.maximum(q, PROB_FLOOR)
    # Terms with reference probability 0 contribute 0 (lim p·ln p = 0).
    terms = np.where(r > 0, r * (np.log(rr) - np.log(qq)), 0.0)
    return np.asarray(np.maximum(terms.sum(axis=1), 0.0))


def top1_agreement(reference: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per image: does the top-1 class equal the pristine top-1 class?"""
    r = _probs2d(reference)
    q = _probs2d(probs)
    if r.shape != q.shape:
        raise MetricError(f"reference {r.shape} and prediction {q.shape} differ in shape")
    return np.asarray(r.argmax(axis=1) == q.argmax(axis=1))


# ----------------------------------------------------------------------------- detections


class DetectionLike(Protocol):
    boxes: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray


@dataclass(frozen=True)
class Detections:
    """Boxes ``(N, 4)`` xyxy in original-image pixels, scores ``(N,)``, COCO category ids ``(N,)``."""

    boxes: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray

    @staticmethod
    def of(obj: DetectionLike | Mapping[str, Any]) -> Detections:
        """From a task model's DetectionOutput (attributes) or its JSON form (keys)."""
        if isinstance(obj, Mapping):
            boxes, scores, cats = obj["boxes"], obj["scores"], obj["category_ids"]
        else:
            boxes, scores, cats = obj.boxes, obj.scores, obj.category_ids
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        c = np.asarray(cats, dtype=np.int64).reshape(-1)
        if not (b.shape[0] == s.shape[0] == c.shape[0]):
            raise MetricError(f"detections disagree in length: {b.shape[0]}, {s.shape[0]}, {c.shape[0]}")
        return Detections(b, s, c)

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], self.category_ids[keep])

    def to_json(self) -> dict[str, Any]:
        return {
            "boxes": np.round(self.boxes, 2).tolist(),
            "scores": np.round(self.scores, 5).tolist(),
            "category_ids": self.category_ids.tolist(),
        }

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes ``(N, 4)`` × ``(M, 4)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_detections(
    reference: Detections, test: Detections, iou_threshold: float = MATCH_IOU
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching (see module docstring); returns ``(i_reference, j_test, iou)``."""
    if len(reference) == 0 or len(test) == 0:
        return []
    iou = box_iou(reference.boxes, test.boxes)
    iou[reference.category_ids[:, None] != test.category_ids[None, :]] = -1.0
    used = np.zeros(len(test), dtype=bool)
    matches: list[tuple[int, int, float]] = []
    for i in np.argsort(-reference.scores, kind="stable"):
        row = np.where(used, -1.0, iou[i])
        j = int(row.argmax())
        if row[j] >= iou_threshold:
            used[j] = True
            matches.append((int(i), j, float(row[j])))
    return matches


@dataclass(frozen=True)
class PseudoCounts:
    """Per-image counts against pristine detections, kept so that sets of images can be summed."""

    tp: int
    fp: int
    fn: int
    soft_matched: float  # Σ IoU·√(s_ref·s_test) over matches at the soft threshold
    soft_mass: float  # Σ s_ref + Σ s_test at the soft threshold


def pseudo_counts(
    reference: Detections,
    test: Detections,
    *,
    f1_threshold: float = F1_SCORE_THRESHOLD,
    soft_threshold: float = SOFT_SCORE_THRESHOLD,
    iou_threshold: float = MATCH_IOU,
) -> PseudoCounts:
    r, t = reference.above(f1_threshold), test.above(f1_threshold)
    tp = len(match_detections(r, t, iou_threshold))
    rs, ts = reference.above(soft_threshold), test.above(soft_threshold)
    soft = sum(
        iou * float(np.sqrt(rs.scores[i] * ts.scores[j])) for i, j, iou in match_detections(rs, ts, iou_threshold)
    )
    return PseudoCounts(tp, len(t) - tp, len(r) - tp, soft, float(rs.scores.sum() + ts.scores.sum()))


def f1_from_counts(counts: Iterable[PseudoCounts]) -> float:
    tp = fp = fn = 0
    for c in counts:
        tp, fp, fn = tp + c.tp, fp + c.fp, fn + c.fn
    den = 2 * tp + fp + fn
    return 1.0 if den == 0 else 2 * tp / den


def soft_distortion_from_counts(counts: Iterable[PseudoCounts]) -> float:
    matched = mass = 0.0
    for c in counts:
        matched, mass = matched + c.soft_matched, mass + c.soft_mass
    return 0.0 if mass == 0 else 1.0 - 2.0 * matched / mass


# ----------------------------------------------------------------------------- COCO


def coco_results(detections: Mapping[int, Detections]) -> list[dict[str, Any]]:
    """COCO "results" records (bbox as x, y, w, h) for ``{image_id: detections}``."""
    out: list[dict[str, Any]] = []
    for image_id, det in detections.items():
        for box, score, cat in zip(det.boxes, det.scores, det.category_ids, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(cat),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return out


@dataclass(frozen=True)
class CocoScores:
    map: float  # AP@[.5:.95], area all, 100 dets
    ap50: float
    ap75: float
    stats: tuple[float, ...]  # COCOeval.stats (12 numbers) when computed by COCOeval, else ()


def _run_cocoeval(coco_gt: Any, detections: Mapping[int, Detections], image_ids: Sequence[int]) -> Any:
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


def coco_map(coco_gt: Any, detections: Mapping[int, Detections], image_ids: Sequence[int]) -> CocoScores:
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

    def __init__(self, coco_gt: Any, detections: Mapping[int, Detections], image_ids: Sequence[int]) -> None:
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
