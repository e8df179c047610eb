"""Samples and the dataset interface shared by every image set."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shared.imageio import read_rgb


class DatasetError(Exception):
    """Base class of dataset errors."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset folder or index file is missing; the message names what and where."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetFormatError(DatasetError, ValueError):
    """An index file (labels.csv, classes.csv, instances json) is malformed."""


@dataclass(frozen=True)
class Sample:
    """One image: a stable id (its file name), its path, and its target (class index,
    CocoTarget, or None where the ground truth is the model's own pristine prediction)."""

    id: str
    path: Path
    target: Any = None

    def load(self) -> np.ndarray:
        """The image as H×W×3 uint8 RGB (decoded on every call; nothing is cached)."""
        return read_rgb(self.path)


class ImageDataset(Sequence[Sample]):
    """An ordered, indexable list of samples.

    ground_truth: "labels" (class indices), "coco" (COCO annotations) or "pseudo" (no labels:
    scores compare against the model's own output on the pristine image).
    """

    kind: ClassVar[str]
    ground_truth: ClassVar[str]

    def __init__(self, root: Path, samples: list[Sample], limit: int | None = None, seed: int | None = None):
        self.root = root
        self.total = len(samples)
        self.limit = limit
        self.seed = seed
        self.samples = select_subset(samples, limit, seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def describe(self) -> str:
        """One line naming the data and how it is scored (shown beside every number)."""
        n = f"{len(self)} of {self.total}" if len(self) != self.total else str(len(self))
        sub = (
            ""
            if self.limit is None
            else (f", first {self.limit}" if self.seed is None else f", {self.limit} drawn with seed {self.seed}")
        )
        gt = {
            "labels": "labelled",
            "coco": "COCO annotations",
            "pseudo": "pseudo ground truth: scored against the model's own prediction on the pristine image",
        }[self.ground_truth]
        return f"{self.kind} {self.root} ({n} images{sub}; {gt})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def select_subset(samples: list[Sample], limit: int | None, seed: int | None) -> list[Sample]:
    """The first `limit` samples, or with `seed` a reproducible random draw kept in original order."""
    if limit is None or limit >= len(samples):
        return list(samples)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if seed is None:
        return list(samples[:limit])
    picked = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in picked]


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetNotFoundError(f"{what}: folder not found: {path}")
    return path


def require_file(path: Path, what: str, also_tried: Sequence[Path] = ()) -> Path:
    if not path.is_file():
        tried = "".join(f"\n  - {p}" for p in [path, *also_tried])
        raise DatasetNotFoundError(f"{what}: file not found; looked for:{tried}")
    return path
