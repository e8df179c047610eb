"""MTCNN face detector (facenet-pytorch; P/R/O-net weights bundled in the package, MIT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.tasks.base import TaskModel, check_loss_input, freeze
from shared.tasks.errors import InvalidTargetError, TaskDependencyError, WeightsNotFoundError
from shared.tasks.losses import binary_kl
from shared.tasks.outputs import DetectionOutput, DistillTarget, TaskOutput
from shared.tasks.weights import package_dir

FACE_CATEGORY_ID = 1
NET_FILES = ("pnet.pt", "rnet.pt", "onet.pt")


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """[0,1] images → the (x·255 − 127.5)/128 scaling MTCNN's nets were trained on."""
    return (x * 255.0 - 127.5) * 0.0078125


class MTCNNFaces(TaskModel):
    """MTCNN (Zhang et al. 2016) face boxes + five landmarks, boxes in original pixels.

    `weights` may name a folder holding pnet.pt, rnet.pt, onet.pt (default: the package's own).
    `loss` is a distillation loss (no face labels exist here): the P-net face-probability and
    box-regression maps at the first pyramid scales, and the O-net outputs on the pristine
    faces' crops, both against the same nets on the pristine image (`distill_target`).
    """

    kind = "faces"
    batch_size_hint = 4

    def __init__(
        self,
        name: str,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        random_init: bool = False,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        pnet_scales: int = 3,
    ) -> None:
        if random_init:
            raise ValueError(f"{name}: MTCNN's weights ship with facenet-pytorch; random_init is not offered")
        super().__init__(name, weights, device, random_init)
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:
            raise TaskDependencyError(
                f"{name} needs facenet-pytorch (installed --no-deps): pip install 'prepicm[tasks]' ({e})"
            ) from e
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds), device=self.device)
        if self.weights_path is not None and self.weights_path != self._package_data_dir():
            for net_name, fname in zip(("pnet", "rnet", "onet"), NET_FILES, strict=True):
                state = torch.load(str(self.weights_path / fname), map_location="cpu", weights_only=True)
                getattr(self._mtcnn, net_name).load_state_dict(state)
        freeze(self._mtcnn)
        self.min_face_size = min_face_size
        self.thresholds = tuple(thresholds)
        self.pnet_scales = pnet_scales

    @staticmethod
    def _package_data_dir() -> Path | None:
        root = package_dir("facenet_pytorch")
        return root / "data" if root else None

    def find_weights(self, weights: str | Path | None) -> Path | None:
        places = [Path(weights)] if weights is not None else []
        if weights is None:
            data = self._package_data_dir()
            if data is None:
                raise TaskDependencyError(f"{self.name} needs facenet-pytorch: pip install 'prepicm[tasks]'")
            places.append(data)
        for folder in places:
            if all((folder / f).is_file() for f in NET_FILES):
                return folder
        raise WeightsNotFoundError(self.name, ", ".join(NET_FILES), [p / f for p in places for f in NET_FILES])

    @property
    def default_weights_description(self) -> str:
        return "MTCNN P/R/O-net weights bundled in pip package facenet-pytorch"

    @property
    def module(self) -> torch.nn.Module:
        return self._mtcnn

    def _predict_batch(self, images: list[np.ndarray]) -> list[TaskOutput]:
        # facenet batches only equal-sized images; sizes vary here
        return [self._detect_one(im) for im in images]

    def _detect_one(self, im: np.ndarray) -> DetectionOutput:
        h, w = im.shape[:2]
        boxes, probs, points = self._mtcnn.detect(im, landmarks=True)
        if boxes is None:
            return DetectionOutput.empty((h, w), kind="faces")
        n = len(boxes)
        boxes = np.asarray(boxes, np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return DetectionOutput(
            boxes=boxes,
            scores=np.asarray(probs, np.float32),
            category_ids=np.full(n, FACE_CATEGORY_ID, np.int64),
            names=["face"] * n,
            image_size=(h, w),
            keypoints=np.asarray(points, np.float32),
            kind="faces",
        )

    # ---- distillation loss ---------------------------------------------------------------
    def _pyramid(self, h: int, w: int) -> list[tuple[int, int]]:
        """The first `pnet_scales` sizes of MTCNN's image pyramid (factor 0.709)."""
        scale = 12.0 / self.min_face_size
        sizes: list[tuple[int, int]] = []
        while min(h, w) * scale >= 12 and len(sizes) < self.pnet_scales:
            sizes.append((int(h * scale + 1), int(w * scale + 1)))
            scale *= 0.709
        return sizes

    def _pnet_maps(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        maps = []
        for size in self._pyramid(*x.shape[-2:]):
            xs = F.interpolate(x, size=size, mode="area")
            reg, prob = self._mtcnn.pnet(_normalise(xs))
            maps.append((reg, prob[:, 1]))
        return maps

    def _onet_on_boxes(self, x: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from torchvision.ops import roi_align

        crops = roi_align(_normalise(x), boxes, output_size=(48, 48), spatial_scale=1.0, aligned=True)
        return self._mtcnn.onet(crops)  # (box regression, landmarks, probabilities)

    def distill_target(self, x_pristine: torch.Tensor) -> DistillTarget:
        x = x_pristine.to(self.device)
        with torch.no_grad():
            maps = self._pnet_maps(x)
            rgb = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            dets = [self._detect_one(im) for im in rgb]
            rois = [
                torch.cat([torch.full((len(d), 1), float(i)), torch.from_numpy(d.boxes)], dim=1)
                for i, d in enumerate(dets)
            ]
            boxes = torch.cat(rois).to(self.device) if rois else torch.zeros((0, 5), device=self.device)
            onet = self._onet_on_boxes(x, boxes) if len(boxes) else None
        return DistillTarget({"pnet": maps, "boxes": boxes, "onet": onet, "shape": tuple(x.shape)})

    def loss(self, x: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
        check_loss_input(x)
        if not isinstance(target, DistillTarget) or target.tensors.get("shape") != tuple(x.shape):
            raise InvalidTargetError(
                f"{self.name}: target must be distill_target(x_pristine) for a batch of shape {tuple(x.shape)}"
            )
        x = x.to(self.device)
        pnet = torch.zeros((), device=self.device)
        for (reg, prob), (reg_t, prob_t) in zip(self._pnet_maps(x), target.tensors["pnet"], strict=True):
            # face probability as binary KL to the pristine map; box regression where a face was likely
            pnet = pnet + binary_kl(prob, prob_t)
            pnet = pnet + (prob_t.unsqueeze(1) * (reg - reg_t).abs()).mean()
        terms = {"pnet": pnet}
        onet = torch.zeros((), device=self.device)
        if target.tensors["onet"] is not None:
            reg, lmk, prob = self._onet_on_boxes(x, target.tensors["boxes"])
            reg_t, lmk_t, prob_t = target.tensors["onet"]
            onet = binary_kl(prob[:, 1], prob_t[:, 1])
            onet = onet + F.l1_loss(reg, reg_t) + F.l1_loss(lmk, lmk_t)
        terms["onet"] = onet
        return {"loss": pnet + onet, **terms}
