"""The task registry: stable names → task-model classes, and `get_task`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from shared.registry import Registry
from shared.tasks.base import TaskModel
from shared.tasks.classifiers import EfficientNetLite0, MobileNetV2
from shared.tasks.faces import MTCNNFaces
from shared.tasks.torchvision_models import (
    FasterRCNNResNet50FPN,
    FCOSResNet50FPN,
    ResNet50,
    ResNeXt50,
    RetinaNetResNet50FPN,
    SwinT,
    ViTB16,
)
from shared.tasks.yolov5n import YoloV5

TASKS: Registry[type[TaskModel]] = Registry("task model")
# weights available offline here
TASKS.register("efficientnet_lite0", EfficientNetLite0)
TASKS.register("mobilenet_v2", MobileNetV2)
TASKS.register("yolov5n", YoloV5)
TASKS.register("mtcnn", MTCNNFaces)
# the paper's models: weights supplied by the user
TASKS.register("fcos_resnet50_fpn", FCOSResNet50FPN)
TASKS.register("fasterrcnn_resnet50_fpn", FasterRCNNResNet50FPN)
TASKS.register("retinanet_resnet50_fpn", RetinaNetResNet50FPN)
TASKS.register("resnet50", ResNet50)
TASKS.register("resnext50_32x4d", ResNeXt50)
TASKS.register("swin_t", SwinT)
TASKS.register("vit_b_16", ViTB16)


def get_task(
    name: str,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    random_init: bool = False,
    **options: Any,
) -> TaskModel:
    """Build a frozen task model by registry name.

    weights: a weights file (or, for mtcnn, a folder); None looks in the default places (shared
    weights folder, the pip package that ships them, the torch hub cache) and raises
    WeightsNotFoundError naming them all. random_init=True builds random weights instead, for
    plumbing tests only; it is never the fallback for a missing file. options: model-specific
    (e.g. yolov5n img_size, detectors min_size).
    """
    return TASKS.get(name)(name.lower(), weights=weights, device=device, random_init=random_init, **options)


def task_kind(name: str) -> str:
    """ "classification" | "detection" | "faces", without building the model."""
    return TASKS.get(name).kind
