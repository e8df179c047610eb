"""Structured outputs of task models and the targets their losses take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass
class ClassificationOutput:
    """One image's classification: the full probability vector and the top-k classes."""

    probs: np.ndarray  # float32 (C,)
    top: list[tuple[int, str, float]]  # (class index, class name, probability), best first
    kind: str = "classification"

    @property
    def top1(self) -> int:
        return self.top[0][0]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "top": [{"index": i, "name": n, "score": round(s, 6)} for i, n, s in self.top],
        }


@dataclass
class DetectionOutput:
    """One image's detections, boxes xyxy in the ORIGINAL image's pixel coordinates."""

    boxes: np.ndarray  # float32 (N, 4) x1, y1, x2, y2
    scores: np.ndarray  # float32 (N,)
    category_ids: np.ndarray  # int64 (N,): COCO category ids for COCO detectors, 1 = face for faces
    names: list[str]  # (N,) label names
    image_size: tuple[int, int] = (0, 0)  # (height, width) of the image the boxes refer to
    keypoints: np.ndarray | None = None  # (N, K, 2) e.g. MTCNN's five facial landmarks
    kind: str = "detection"

    def __len__(self) -> int:
        return len(self.scores)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "image_size": list(self.image_size),
            "detections": [
                {
                    "box": [round(float(v), 2) for v in box],
                    "score": round(float(score), 5),
                    "category_id": int(cid),
                    "name": name,
                }
                for box, score, cid, name in zip(self.boxes, self.scores, self.category_ids, self.names, strict=True)
            ],
        }
        if self.keypoints is not None:
            for det, kps in zip(out["detections"], self.keypoints, strict=True):
                det["keypoints"] = [[round(float(x), 2), round(float(y), 2)] for x, y in kps]
        return out

    def to_coco_results(self, image_id: int) -> list[dict[str, Any]]:
        """COCO results-json entries (bbox as x, y, w, h) for pycocotools' `COCO.loadRes`."""
        return [
            {
                "image_id": int(image_id),
                "category_id": int(cid),
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "score": float(score),
            }
            for (x1, y1, x2, y2), score, cid in zip(self.boxes, self.scores, self.category_ids, strict=True)
        ]

    def above(self, threshold: float) -> DetectionOutput:
        """The detections scoring at least ``threshold``."""
        keep = np.asarray(self.scores) >= threshold
        kps = None if self.keypoints is None else self.keypoints[keep]
        return DetectionOutput(self.boxes[keep], self.scores[keep], self.category_ids[keep],
                               [n for n, k in zip(self.names, keep, strict=True) if k], self.image_size, kps, self.kind)

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> DetectionOutput:
        """The inverse of :meth:`to_json`; also reads the columnar form older sweep results stored
        (``{"boxes": [...], "scores": [...], "category_ids": [...]}``)."""
        if "detections" in obj:
            dets = list(obj["detections"])
            boxes = [d["box"] for d in dets]
            scores = [d["score"] for d in dets]
            cats = [d["category_id"] for d in dets]
            names = [str(d.get("name", "")) for d in dets]
            kps = [d["keypoints"] for d in dets] if dets and all("keypoints" in d for d in dets) else None
        else:
            boxes, scores, cats = obj["boxes"], obj["scores"], obj["category_ids"]
            names, kps = [""] * len(scores), None
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        sc = np.asarray(scores, dtype=np.float32).reshape(-1)
        c = np.asarray(cats, dtype=np.int64).reshape(-1)
        if not (b.shape[0] == sc.shape[0] == c.shape[0]):
            raise ValueError(f"detections disagree in length: {b.shape[0]}, {sc.shape[0]}, {c.shape[0]}")
        size = obj.get("image_size") or (0, 0)
        return DetectionOutput(b, sc, c, names, (int(size[0]), int(size[1])),
                               None if kps is None else np.asarray(kps, dtype=np.float32),
                               str(obj.get("kind", "detection")))

    @staticmethod
    def empty(image_size: tuple[int, int], kind: str = "detection") -> DetectionOutput:
        return DetectionOutput(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            category_ids=np.zeros((0,), np.int64),
            names=[],
            image_size=image_size,
            kind=kind,
        )


TaskOutput = ClassificationOutput | DetectionOutput


@dataclass
class DetectionTarget:
    """Ground-truth (or pseudo ground-truth) boxes of one image for a detector's training loss.

    boxes: (M, 4) xyxy in the pixel coordinates of the image tensor the loss is computed on;
    category_ids: (M,) COCO category ids (for faces: 1).
    """

    boxes: torch.Tensor
    category_ids: torch.Tensor

    @staticmethod
    def from_coco(annotations: list[dict[str, Any]], scale: float = 1.0) -> DetectionTarget:
        """From COCO annotation dicts (bbox x, y, w, h); crowd regions and empty boxes are skipped."""
        import torch

        rows = [
            (a["bbox"], a["category_id"])
            for a in annotations
            if not a.get("iscrowd", 0) and a["bbox"][2] > 0 and a["bbox"][3] > 0
        ]
        boxes = torch.tensor([[x, y, x + w, y + h] for (x, y, w, h), _ in rows], dtype=torch.float32).reshape(-1, 4)
        cats = torch.tensor([c for _, c in rows], dtype=torch.int64)
        return DetectionTarget(boxes * scale, cats)

    @staticmethod
    def from_output(output: DetectionOutput, min_score: float = 0.25) -> DetectionTarget:
        """Pseudo ground truth: the confident detections a model made on the pristine image."""
        import torch

        keep = output.scores >= min_score
        return DetectionTarget(
            torch.from_numpy(np.ascontiguousarray(output.boxes[keep], dtype=np.float32)).reshape(-1, 4),
            torch.from_numpy(np.ascontiguousarray(output.category_ids[keep], dtype=np.int64)),
        )


@dataclass
class DistillTarget:
    """The model's own outputs on the pristine images, for a distillation loss (no labels)."""

    tensors: dict[str, Any] = field(default_factory=dict)
