"""The dataset registry: stable names → dataset classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.datasets.base import ImageDataset
from shared.datasets.coco import CocoDataset
from shared.datasets.folder import ImageFolder
from shared.datasets.imagenet import ImageNetFolder
from shared.registry import Registry

DATASETS: Registry[type[ImageDataset]] = Registry("dataset kind")
DATASETS.register("imagenet_folder", ImageNetFolder)
DATASETS.register("coco", CocoDataset)
DATASETS.register("folder", ImageFolder)


def open_dataset(
    kind: str, root: str | Path, limit: int | None = None, seed: int | None = None, **options: Any
) -> ImageDataset:
    """Open a dataset of a registered kind. `limit` keeps the first N samples (or, with `seed`,
    a reproducible random N); options go to the dataset (e.g. coco: split=, annotations=)."""
    return DATASETS.get(kind)(Path(root), limit=limit, seed=seed, **options)
