"""Downstream task models (frozen classifiers and detectors) behind one interface.

>>> from shared.tasks import get_task
>>> model = get_task("efficientnet_lite0")       # finds its weights offline, never downloads
>>> outs = model.predict([rgb1, rgb2])           # decoded H×W×3 uint8 images of any sizes
>>> terms = model.loss(x, labels)                # x: (N,3,H,W) in [0,1], differentiable
"""

from shared.tasks.base import TASK_KINDS, TaskModel
from shared.tasks.errors import InvalidTargetError, TaskDependencyError, TaskError, WeightsNotFoundError
from shared.tasks.outputs import (
    ClassificationOutput,
    DetectionOutput,
    DetectionTarget,
    DistillTarget,
    TaskOutput,
)
from shared.tasks.registry import TASKS, get_task, task_kind

__all__ = [
    "TASKS",
    "TASK_KINDS",
    "ClassificationOutput",
    "DetectionOutput",
    "DetectionTarget",
    "DistillTarget",
    "InvalidTargetError",
    "TaskDependencyError",
    "TaskError",
    "TaskModel",
    "TaskOutput",
    "WeightsNotFoundError",
    "get_task",
    "task_kind",
]
