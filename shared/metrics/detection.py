"""Detections against the pristine image's detections (pseudo ground truth), and the
continuous detection distortion. Detections are :class:`shared.tasks.outputs.DetectionOutput`.

- Matching: detections on the decoded image are matched to the pristine detections (same
  category, IoU ≥ :data:`MATCH_IOU` = 0.5, greedy in order of pristine score, each decoded box
  used once, the one with the highest IoU chosen).
- F1: both sides first filtered at :data:`F1_SCORE_THRESHOLD` = 0.25 (YOLOv5's ``detect.py``
  default); over a set of images micro-averaged, ``2·ΣTP / (2·ΣTP + ΣFP + ΣFN)``; an image with
  no boxes on either side counts nothing.
- Soft-F distortion: both sides filtered at :data:`SOFT_SCORE_THRESHOLD` = 0.05, matched as
  above, then ``D = 1 − 2·Σ_matched IoU·√(s_pristine·s_decoded) / (Σ s_pristine + Σ s_decoded)``
  with the sums over all images. Identical detections give D = 0; losing or adding a confident
  box, shrinking a score or shifting a box raises D smoothly in proportion to the scores
  involved, which resolves far smaller effects than mAP.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shared.tasks.outputs import DetectionOutput

MATCH_IOU = 0.5
F1_SCORE_THRESHOLD = 0.25
SOFT_SCORE_THRESHOLD = 0.05


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
    reference: DetectionOutput, test: DetectionOutput, iou_threshold: float = MATCH_IOU
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
    reference: DetectionOutput,
    test: DetectionOutput,
    *,
    f1_threshold: float = F1_SCORE_THRESHOLD,
    soft_threshold: float = SOFT_SCORE_THRESHOLD,
    iou_threshold: float = MATCH_IOU,
) -> PseudoCounts:
    r, t = reference.above(f1_threshold), test.above(f1_threshold)
    tp = len(match_detections(r, t, iou_threshold))
    rs, ts = reference.above(soft_threshold), test.above(soft_threshold)
    soft = sum(iou * math.sqrt(float(rs.scores[i]) * float(ts.scores[j]))
               for i, j, iou in match_detections(rs, ts, iou_threshold))
    mass = float(rs.scores.sum(dtype=np.float64) + ts.scores.sum(dtype=np.float64))
    return PseudoCounts(tp, len(t) - tp, len(r) - tp, soft, mass)


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
