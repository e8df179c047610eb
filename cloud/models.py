"""The task models a cloud serves: built once at start, each warmed up by one predict."""

from __future__ import annotations

import logging
import time

import numpy as np

from cloud.core.config import CloudSettings
from shared.tasks import TaskModel, get_task

log = logging.getLogger("cloud")


def load_models(settings: CloudSettings) -> dict[str, TaskModel]:
    """``TASKS`` on ``DEVICE``; a missing weights file raises (WeightsNotFoundError names where it looked)."""
    models: dict[str, TaskModel] = {}
    warm = np.full((64, 64, 3), 114, np.uint8)
    for name in settings.TASKS:
        t0 = time.perf_counter()
        model = get_task(name, device=settings.DEVICE, **settings.task_options(name))
        # the first call pays for lazy initialisation (kernels, allocator); not the first frame's client
        model.predict([warm])
        log.info("task %s (%s) on %s, weights %s, ready in %.1f s", name, model.kind, settings.DEVICE,
                 model.weights_description, time.perf_counter() - t0)
        models[name] = model
    return models
