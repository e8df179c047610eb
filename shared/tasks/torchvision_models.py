"""The paper's task networks from torchvision: COCO detectors (FCOS, Faster R-CNN, RetinaNet with
ResNet-50 FPN) and ImageNet classifiers (ResNet-50, ResNeXt-50, Swin-T, ViT-B/16).

No weights for these exist offline here: users supply the file (weights=PATH, or torchvision's
file name in the torch hub cache). Builders always get weights=None, weights_backbone=None so
nothing ever downloads; random_init=True gives random weights for plumbing tests only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.tasks.base import TaskModel, check_loss_input, freeze, rgb_to_tensor
from shared.tasks.classifiers import ClassifierPreprocess, ImageClassifier
from shared.tasks.coco_labels import coco91_names
from shared.tasks.errors import InvalidTargetError
from shared.tasks.outputs import DetectionOutput, DetectionTarget, TaskOutput
from shared.tasks.weights import WeightsSpec, load_state_dict


def frozen_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace BatchNorm2d by torchvision's FrozenBatchNorm2d (what the COCO weights were trained
    with): detectors must run in train mode to give losses, and frozen BN then still uses the
    running statistics. FrozenBatchNorm2d also loads state_dicts with or without BN counters."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                frozen.weight.copy_(child.weight)
                frozen.bias.copy_(child.bias)
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            frozen_batchnorm(child)
    return module


def _weights_spec(url: str, what: str) -> WeightsSpec:
    filename = url.rsplit("/", 1)[-1]
    return WeightsSpec(filename=filename, description=f"torchvision {what} ({filename}; not shipped, supply it)")


class TorchvisionDetector(TaskModel):
    """A torchvision COCO detector; labels are COCO category ids (1..90). Options: min_size,
    max_size (the model's own resize, default 800/1333), score_thresh, detections_per_img,
    pseudo_min_score (confidence a pristine detection needs to become a pseudo ground-truth box)."""

    kind = "detection"
    batch_size_hint = 2
    builder_name: str
    score_kwarg = "score_thresh"

    def __init__(
        self,
        name: str,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        random_init: bool = False,
        min_size: int = 800,
        max_size: int = 1333,
        score_thresh: float | None = None,
        detections_per_img: int = 100,
        pseudo_min_score: float = 0.5,
    ) -> None:
        super().__init__(name, weights, device, random_init)
        import torchvision.models.detection as det

        kwargs: dict[str, Any] = {"min_size": min_size, "max_size": max_size}
        if score_thresh is not None:
            kwargs[self.score_kwarg] = score_thresh
        kwargs["box_detections_per_img" if self.score_kwarg.startswith("box_") else "detections_per_img"] = (
            detections_per_img
        )
        builder: Callable[..., torch.nn.Module] = getattr(det, self.builder_name)
        net = frozen_batchnorm(builder(weights=None, weights_backbone=None, num_classes=91, **kwargs))
        if self.weights_path is not None:
            net.load_state_dict(load_state_dict(self.weights_path))
        self._net = freeze(net).to(self.device)
        self.names = coco91_names()
        self.pseudo_min_score = pseudo_min_score
        # kept so that caches key outputs on the options the model was built with
        self.min_size, self.max_size, self.score_thresh = min_size, max_size, score_thresh
        self.detections_per_img = detections_per_img

    @property
    def module(self) -> torch.nn.Module:
        return self._net

    def _outputs(self, results: list[dict[str, torch.Tensor]], sizes: list[tuple[int, int]]) -> list[DetectionOutput]:
        outs = []
        for r, size in zip(results, sizes, strict=True):
            labels = r["labels"].cpu().numpy().astype(np.int64)
            outs.append(
                DetectionOutput(
                    boxes=r["boxes"].detach().float().cpu().numpy(),
                    scores=r["scores"].detach().float().cpu().numpy(),
                    category_ids=labels,
                    names=[self.names[i] for i in labels],
                    image_size=size,
                )
            )
        return outs

    def _predict_batch(self, images: list[np.ndarray]) -> list[TaskOutput]:
        # the model resizes each image itself and maps boxes back to the size it was given
        tensors = [rgb_to_tensor(im, self.device)[0] for im in images]
        return list(self._outputs(self._net(tensors), [im.shape[:2] for im in images]))

    def distill_target(self, x_pristine: torch.Tensor) -> list[DetectionTarget]:
        with torch.no_grad():
            results = self._net(list(x_pristine.to(self.device)))
        outs = self._outputs(results, [tuple(x_pristine.shape[-2:])] * x_pristine.shape[0])  # type: ignore[list-item]
        return [DetectionTarget.from_output(o, self.pseudo_min_score) for o in outs]

    def loss(self, x: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
        """The detector's own training losses against boxes in x's pixel coordinates."""
        check_loss_input(x)
        if not isinstance(target, list | tuple) or len(target) != x.shape[0]:
            raise InvalidTargetError(f"{self.name}: target must be a list of {x.shape[0]} DetectionTarget")
        tv_targets = []
        for t in target:
            if not isinstance(t, DetectionTarget):
                raise InvalidTargetError(f"{self.name}: targets must be DetectionTarget, got {type(t).__name__}")
            tv_targets.append(
                {
                    "boxes": t.boxes.to(self.device).float().reshape(-1, 4),
                    "labels": t.category_ids.to(self.device).long(),
                }
            )
        self._net.train()  # torchvision detectors return losses only in train mode (BN is frozen)
        try:
            terms = self._net(list(x.to(self.device)), tv_targets)
        finally:
            self._net.eval()
        total = sum(terms.values(), torch.zeros((), device=self.device))
        return {"loss": total, **terms}


class FCOSResNet50FPN(TorchvisionDetector):
    builder_name = "fcos_resnet50_fpn"
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/fcos_resnet50_fpn_coco-99b0c9b7.pth", "FCOS_ResNet50_FPN_Weights.COCO_V1"
    )


class FasterRCNNResNet50FPN(TorchvisionDetector):
    builder_name = "fasterrcnn_resnet50_fpn"
    score_kwarg = "box_score_thresh"
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
        "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
    )


class RetinaNetResNet50FPN(TorchvisionDetector):
    builder_name = "retinanet_resnet50_fpn"
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/retinanet_resnet50_fpn_coco-eeacb38b.pth",
        "RetinaNet_ResNet50_FPN_Weights.COCO_V1",
    )


class TorchvisionClassifier(ImageClassifier):
    """A torchvision ImageNet classifier built with weights=None and loaded from a user file."""

    builder_name: str

    def build(self) -> torch.nn.Module:
        import torchvision.models as models

        builder: Callable[..., torch.nn.Module] = getattr(models, self.builder_name)
        return frozen_batchnorm(builder(weights=None))


class ResNet50(TorchvisionClassifier):
    builder_name = "resnet50"
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/resnet50-0676ba61.pth", "ResNet50_Weights.IMAGENET1K_V1"
    )


class ResNeXt50(TorchvisionClassifier):
    builder_name = "resnext50_32x4d"
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth", "ResNeXt50_32X4D_Weights.IMAGENET1K_V1"
    )


class SwinT(TorchvisionClassifier):
    builder_name = "swin_t"
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/swin_t-704ceda3.pth", "Swin_T_Weights.IMAGENET1K_V1"
    )
    preprocess = ClassifierPreprocess(resize=232, crop=224, interpolation="bicubic")


class ViTB16(TorchvisionClassifier):
    builder_name = "vit_b_16"
    batch_size_hint = 8
    weights_spec = _weights_spec(
        "https://download.pytorch.org/models/vit_b_16-c867db91.pth", "ViT_B_16_Weights.IMAGENET1K_V1"
    )
