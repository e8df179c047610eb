"""Any folder of images, unlabelled: scored against the model's own pristine prediction."""

from __future__ import annotations

from pathlib import Path

from shared.datasets.base import DatasetNotFoundError, ImageDataset, Sample, require_dir
from shared.imageio import IMAGE_SUFFIXES


class ImageFolder(ImageDataset):
    """Images directly inside `root` (sorted by name, not recursive). No labels: the ground truth
    is PSEUDO — the task model's output on the pristine (uncompressed) image."""

    kind = "folder"
    ground_truth = "pseudo"

    def __init__(self, root: str | Path, limit: int | None = None, seed: int | None = None) -> None:
        root = require_dir(Path(root), "image folder")
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetNotFoundError(
                f"image folder {root} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})"
            )
        super().__init__(root, [Sample(id=p.name, path=p, target=None) for p in files], limit, seed)
