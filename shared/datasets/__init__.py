"""Image sets for evaluation and training: ImageNet-style labelled folders, COCO, and plain
folders scored against pseudo ground truth (the model's own prediction on the pristine image).

>>> from shared.datasets import open_dataset
>>> ds = open_dataset("imagenet_folder", shared_data_dir() / "data/imagenet/val", limit=50)
>>> sample = ds[0]; rgb = sample.load(); label = sample.target
"""

from shared.datasets.base import (
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageDataset,
    Sample,
)
from shared.datasets.coco import CocoDataset, CocoTarget
from shared.datasets.folder import ImageFolder
from shared.datasets.imagenet import ImageNetFolder
from shared.datasets.registry import DATASETS, open_dataset

__all__ = [
    "DATASETS",
    "CocoDataset",
    "CocoTarget",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "ImageDataset",
    "ImageFolder",
    "ImageNetFolder",
    "Sample",
    "open_dataset",
]
