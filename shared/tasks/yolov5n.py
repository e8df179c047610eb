"""YOLOv5n COCO detector through the `yolov5` pip package (7.0.14), configured as the reference
numbers in shared/weights/README.md: square letterbox 640 (grey 114), conf 0.001, NMS IoU 0.65,
multi-label, at most 300 detections, FP32, Conv+BN fused."""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.tasks.base import TaskModel, check_loss_input, freeze
from shared.tasks.coco_labels import coco80_category_ids, coco80_names
from shared.tasks.errors import InvalidTargetError, TaskDependencyError
from shared.tasks.letterbox import LetterboxGeometry, letterbox_image, letterbox_tensor
from shared.tasks.outputs import DetectionOutput, DetectionTarget, TaskOutput
from shared.tasks.weights import WeightsSpec, load_state_dict

# Loss gains of yolov5's hyp.scratch-low.yaml (the recipe YOLOv5n was trained with); train.py
# scales them by 3/nl (nl = 3 here → 1) and obj by (imgsz/640)².
LOSS_HYP: dict[str, float] = {
    "box": 0.05,
    "cls": 0.5,
    "cls_pw": 1.0,
    "obj": 1.0,
    "obj_pw": 1.0,
    "anchor_t": 4.0,
    "fl_gamma": 0.0,
    "label_smoothing": 0.0,
}


def _import_yolov5() -> Any:
    try:
        with warnings.catch_warnings():  # the package imports the deprecated pkg_resources
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            from PIL import Image

            # yolov5 imports ultralytics, which replaces PIL.Image.open process-wide with a
            # wrapper that tries to install a HEIF plugin on unreadable input; our codecs must
            # keep PIL's own behaviour (a typed error for a corrupt stream), so put it back.
            pil_open = Image.open
            try:
                import yolov5.models.yolo as yolo
            finally:
                Image.open = pil_open
    except ImportError as e:  # includes pkg_resources missing with setuptools>=81
        raise TaskDependencyError(
            f"yolov5n needs the pip package yolov5==7.0.14 (installed --no-deps, see requirements/"
            f"nodeps.txt) and setuptools<81: pip install 'prepicm[tasks]' ({e})"
        ) from e
    return yolo


class YoloV5(TaskModel):
    """YOLOv5 via the pip package. Options: cfg (model yaml; default the package's yolov5n.yaml),
    img_size (letterbox side, 640), conf_thres, iou_thres, max_det, pseudo_min_score (score a
    pristine detection needs to become a pseudo ground-truth box in `distill_target`)."""

    kind = "detection"
    batch_size_hint = 8
    weights_spec = WeightsSpec(
        filename="yolov5n_state_dict.pt",
        description="YOLOv5n COCO weights as a plain state_dict (shared/weights/yolov5n_state_dict.pt, AGPL-3.0)",
        in_shared_dir=True,
    )

    def __init__(
        self,
        name: str,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        random_init: bool = False,
        cfg: str | Path | None = None,
        img_size: int = 640,
        conf_thres: float = 0.001,
        iou_thres: float = 0.65,
        max_det: int = 300,
        pseudo_min_score: float = 0.25,
    ) -> None:
        super().__init__(name, weights, device, random_init)
        yolo = _import_yolov5()
        if cfg is None:
            cfg = Path(yolo.__file__).parent / "yolov5n.yaml"
        self.cfg = Path(cfg)
        if not self.cfg.is_file():
            raise FileNotFoundError(f"{name}: model config not found: {self.cfg}")
        self.img_size, self.conf_thres, self.iou_thres, self.max_det = img_size, conf_thres, iou_thres, max_det
        self.pseudo_min_score = pseudo_min_score
        self.category_ids = np.array(coco80_category_ids(), dtype=np.int64)
        self.class_names = list(coco80_names())
        self._index_of_category = {int(c): i for i, c in enumerate(self.category_ids)}

        with _quiet("yolov5"):  # Model() logs its layer table at INFO
            net = yolo.Model(str(self.cfg), ch=3, nc=len(self.category_ids))
        if self.weights_path is not None:
            try:
                state = load_state_dict(self.weights_path)
            except pickle.UnpicklingError as e:
                raise ValueError(
                    f"{self.weights_path} is not a plain state_dict (a pickled yolov5 checkpoint?); use "
                    f"yolov5n_state_dict.pt as described in shared/weights/README.md ({e})"
                ) from e
            net.load_state_dict(state)
        net = net.float()
        with _quiet("yolov5"), torch.no_grad():  # no_grad keeps the fused weights leaf tensors
            net = net.fuse()  # the reference numbers were measured fused
        net.hyp = {**LOSS_HYP, "obj": LOSS_HYP["obj"] * (img_size / 640) ** 2}
        self._net = freeze(net).to(self.device)

    @property
    def module(self) -> torch.nn.Module:
        return self._net

    # ---- inference -----------------------------------------------------------------------
    def _nms(self, raw: torch.Tensor) -> list[torch.Tensor]:
        return yolo_nms(raw, self.conf_thres, self.iou_thres, self.max_det)

    def _to_output(self, det: torch.Tensor, geo: LetterboxGeometry) -> DetectionOutput:
        det = det.detach().float().cpu()
        cls = det[:, 5].long().numpy()
        return DetectionOutput(
            boxes=geo.from_letterbox(det[:, :4].numpy()),
            scores=det[:, 4].numpy().astype(np.float32),
            category_ids=self.category_ids[cls],
            names=[self.class_names[c] for c in cls],
            image_size=(geo.in_h, geo.in_w),
        )

    def _predict_batch(self, images: list[np.ndarray]) -> list[TaskOutput]:
        boxed = [letterbox_image(im, self.img_size) for im in images]
        x = torch.from_numpy(np.stack([b for b, _ in boxed])).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        dets = self._nms(self._net(x)[0])
        return [self._to_output(d, geo) for d, (_, geo) in zip(dets, boxed, strict=True)]

    def detect_tensor(self, x: torch.Tensor) -> list[DetectionOutput]:
        """Detections on an (N,3,H,W) [0,1] batch, boxes in x's pixel coordinates."""
        with torch.no_grad():
            lb, geo = letterbox_tensor(x.to(self.device), self.img_size)
            was_training = self._net.training
            self._net.eval()
            try:
                dets = self._nms(self._net(lb)[0])
            finally:
                self._net.train(was_training)
        return [self._to_output(d, geo) for d in dets]

    # ---- training ------------------------------------------------------------------------
    def distill_target(self, x_pristine: torch.Tensor) -> list[DetectionTarget]:
        return [DetectionTarget.from_output(o, self.pseudo_min_score) for o in self.detect_tensor(x_pristine)]

    def _yolo_targets(self, targets: list[DetectionTarget], geo: LetterboxGeometry) -> torch.Tensor:
        rows = []
        for i, t in enumerate(targets):
            if not isinstance(t, DetectionTarget):
                raise InvalidTargetError(f"{self.name}: targets must be DetectionTarget, got {type(t).__name__}")
            keep = [j for j, c in enumerate(t.category_ids.tolist()) if c in self._index_of_category]
            if not keep:
                continue
            boxes = geo.to_letterbox(t.boxes[keep].detach().cpu().numpy()) / self.img_size
            cls = [self._index_of_category[int(t.category_ids[j])] for j in keep]
            xywh = np.stack(
                [
                    (boxes[:, 0] + boxes[:, 2]) / 2,
                    (boxes[:, 1] + boxes[:, 3]) / 2,
                    boxes[:, 2] - boxes[:, 0],
                    boxes[:, 3] - boxes[:, 1],
                ],
                axis=1,
            )
            rows.append(np.concatenate([np.full((len(cls), 1), i), np.array(cls)[:, None], xywh], axis=1))
        if not rows:
            return torch.zeros((0, 6), device=self.device)
        return torch.from_numpy(np.concatenate(rows).astype(np.float32)).to(self.device)

    def loss(self, x: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
        """YOLOv5's own training loss (box CIoU + objectness + class BCE) on the letterboxed x,
        against boxes in x's pixel coordinates (COCO labels or `distill_target`'s pseudo boxes)."""
        check_loss_input(x)
        if not isinstance(target, list | tuple) or len(target) != x.shape[0]:
            raise InvalidTargetError(f"{self.name}: target must be a list of {x.shape[0]} DetectionTarget")
        from yolov5.utils.loss import ComputeLoss

        lb, geo = letterbox_tensor(x.to(self.device), self.img_size)
        yolo_targets = self._yolo_targets(list(target), geo)
        self._net.train()  # Detect returns raw per-level maps in train mode (no BN left after fuse)
        try:
            preds = self._net(lb)
        finally:
            self._net.eval()
        total, items = ComputeLoss(self._net)(preds, yolo_targets)
        n = x.shape[0]
        # ComputeLoss returns (box+obj+cls)·batch; report per-image values
        return {"loss": total[0] / n, "box": items[0], "obj": items[1], "cls": items[2]}


def yolo_nms(
    raw: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int, max_candidates: int = 30000
) -> list[torch.Tensor]:
    """Multi-label NMS with the semantics of yolov5's `non_max_suppression(multi_label=True)`:
    score = objectness × class probability, every class above `conf_thres` is a candidate, NMS
    per class. Unlike the package's version it has no wall-clock limit, which on a slow or busy
    CPU silently drops images' detections. Returns per image (n, 6): x1, y1, x2, y2, score, class.
    """
    from torchvision.ops import batched_nms

    out = []
    for pred in raw:
        pred = pred[pred[:, 4] > conf_thres]
        scores = pred[:, 5:] * pred[:, 4:5]
        cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
        i, j = (scores > conf_thres).nonzero(as_tuple=True)
        det = torch.cat([boxes[i], scores[i, j, None], j[:, None].float()], dim=1)
        if det.shape[0] > max_candidates:
            det = det[det[:, 4].argsort(descending=True)[:max_candidates]]
        keep = batched_nms(det[:, :4], det[:, 4], det[:, 5].long(), iou_thres)[:max_det]
        out.append(det[keep])
    return out


class _quiet:
    """Silence a logger below WARNING for a block (yolov5 logs 'Fusing layers...')."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.level = self.logger.level

    def __enter__(self) -> None:
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)
