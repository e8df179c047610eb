"""The score stage: task outputs (cached, else inferred) → per-image records against the pristine
prediction and the labels, and per-point task metrics from those records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.cache import OutputCache
from evaluation.registry import metrics_for
from shared.atomic import atomic_write_json
from shared.metrics.classification import cross_entropy, kl_divergence, top1_agreement, topk_correct
from shared.metrics.coco import coco_map
from shared.metrics.detection import PseudoCounts, f1_from_counts, pseudo_counts, soft_distortion_from_counts
from shared.tasks.outputs import DetectionOutput


class Predictor:
    """The task model behind the output cache; counts the images it actually ran on."""

    def __init__(self, model: Any, cache: OutputCache) -> None:
        self.model = model
        self.cache = cache
        self.inferences = 0

    def __call__(self, images: Sequence[np.ndarray | None], keys: Sequence[str]) -> list[Any]:
        outs: list[Any] = [self.cache.get(k) for k in keys]
        missing = [i for i, o in enumerate(outs) if o is None]
        if missing:
            if any(images[i] is None for i in missing):
                raise RuntimeError("a cached task output vanished while the sweep ran; re-run the sweep")
            for i, o in zip(missing, self.model.predict([images[i] for i in missing]), strict=True):
                outs[i] = o
                self.cache.put(keys[i], o)
            self.inferences += len(missing)
        return outs


def _probs(outputs: Sequence[Any]) -> np.ndarray:
    return np.stack([np.asarray(o.probs, dtype=np.float64) for o in outputs])


def _detections(o: Any) -> DetectionOutput:
    return o if isinstance(o, DetectionOutput) else DetectionOutput.from_json(o)


class Scorer:
    """Per-image records and point metrics for one task kind on one dataset."""

    def __init__(self, kind: str, dataset: Any) -> None:
        self.kind = kind
        self.ground_truth = dataset.ground_truth
        self.n = len(dataset)
        self.metric_names = [m for m in metrics_for(kind, self.ground_truth) if m not in ("psnr", "msssim")]
        self.pristine_probs: np.ndarray | None = None
        self.pristine_dets: list[DetectionOutput] = []
        self.labels: np.ndarray | None = None
        if kind == "classification" and self.ground_truth == "labels":
            self.labels = np.array([int(s.target) for s in dataset], dtype=np.int64)
        self.coco = getattr(dataset, "coco", None) if kind != "classification" and self.ground_truth == "coco" else None
        self.image_ids = [int(s.target.image_id) for s in dataset] if self.coco is not None else []

    # pristine ---------------------------------------------------------------------------------
    def set_pristine(self, outputs: Sequence[Any]) -> None:
        if self.kind == "classification":
            self.pristine_probs = _probs(outputs).astype(np.float32)
        else:
            self.pristine_dets = [_detections(o) for o in outputs]

    def save_pristine(self, out: Path) -> None:
        if self.pristine_probs is not None:
            np.save(out / "pristine_probs.npy", self.pristine_probs)
        else:
            atomic_write_json(out / "pristine_detections.json", [d.to_json() for d in self.pristine_dets])

    def load_pristine(self, out: Path) -> bool:
        if self.kind == "classification":
            p = out / "pristine_probs.npy"
            if p.is_file():
                probs = np.load(p)
                if probs.shape[0] == self.n:
                    self.pristine_probs = probs
                    return True
            return False
        p = out / "pristine_detections.json"
        if p.is_file():
            dets = [DetectionOutput.from_json(d) for d in json.loads(p.read_text())]
            if len(dets) == self.n:
                self.pristine_dets = dets
                return True
        return False

    def pristine_records(self) -> list[dict[str, Any]]:
        if self.kind == "classification":
            assert self.pristine_probs is not None
            return self.records(range(self.n), [_Probs(p) for p in self.pristine_probs])
        return self.records(range(self.n), self.pristine_dets)

    # per image --------------------------------------------------------------------------------
    def records(self, indices: Sequence[int], outputs: Sequence[Any]) -> list[dict[str, Any]]:
        idx = np.asarray(indices, dtype=np.int64)
        if self.kind == "classification":
            return self._classification_records(idx, outputs)
        recs = []
        for i, o in zip(idx, outputs, strict=True):
            det = _detections(o)
            c = pseudo_counts(self.pristine_dets[int(i)], det)
            recs.append({"detections": det.to_json(), "tp": c.tp, "fp": c.fp, "fn": c.fn,
                         "soft_matched": c.soft_matched, "soft_mass": c.soft_mass})
        return recs

    def _classification_records(self, idx: np.ndarray, outputs: Sequence[Any]) -> list[dict[str, Any]]:
        assert self.pristine_probs is not None
        probs = _probs(outputs)
        ref = self.pristine_probs[idx].astype(np.float64)
        kl, agree, pred = kl_divergence(ref, probs), top1_agreement(ref, probs), probs.argmax(axis=1)
        recs: list[dict[str, Any]] = [{"pred": int(pred[k]), "kl": float(kl[k]), "agree": bool(agree[k])}
                                      for k in range(len(idx))]
        if self.labels is not None:
            y = self.labels[idx]
            c1, c5, ce = topk_correct(probs, y, 1), topk_correct(probs, y, 5), cross_entropy(probs, y)
            for k, r in enumerate(recs):
                r.update(correct1=bool(c1[k]), correct5=bool(c5[k]), ce=float(ce[k]))
        return recs

    # per point --------------------------------------------------------------------------------
    def summarize(self, recs: Sequence[dict[str, Any]]) -> dict[str, float]:
        if self.kind == "classification":
            out = {"kl": float(np.mean([r["kl"] for r in recs])),
                   "agreement": float(np.mean([r["agree"] for r in recs]))}
            if self.labels is not None:
                out.update(top1=float(np.mean([r["correct1"] for r in recs])),
                           top5=float(np.mean([r["correct5"] for r in recs])),
                           ce=float(np.mean([r["ce"] for r in recs])))
            return out
        counts = [PseudoCounts(int(r["tp"]), int(r["fp"]), int(r["fn"]), float(r["soft_matched"]),
                               float(r["soft_mass"])) for r in recs]
        out = {"f1": f1_from_counts(counts), "det_distortion": soft_distortion_from_counts(counts)}
        if self.coco is not None:
            dets = {self.image_ids[i]: DetectionOutput.from_json(r["detections"]) for i, r in enumerate(recs)}
            scores = coco_map(self.coco, dets, self.image_ids)
            out.update(map=scores.map, ap50=scores.ap50, ap75=scores.ap75)
        return out


class _Probs:
    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs
