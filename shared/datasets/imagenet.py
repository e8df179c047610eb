"""ImageNet-style folder: images + `labels.csv` (file,label) + `classes.csv` (index,wnid,name)."""

from __future__ import annotations

import csv
from pathlib import Path

from shared.datasets.base import (
    DatasetFormatError,
    ImageDataset,
    Sample,
    require_dir,
    require_file,
)


class ImageNetFolder(ImageDataset):
    """Targets are 0-based ILSVRC-2012 class indices; samples keep `labels.csv` row order.

    `classes.csv` is looked for in the folder, then in its parent (shared/data/imagenet/).
    """

    kind = "imagenet_folder"
    ground_truth = "labels"

    def __init__(
        self,
        root: str | Path,
        limit: int | None = None,
        seed: int | None = None,
        labels_file: str = "labels.csv",
    ) -> None:
        root = require_dir(Path(root), "ImageNet-style image folder")
        labels_path = require_file(root / labels_file, f"labels of ImageNet-style folder {root}")
        samples: list[Sample] = []
        with labels_path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
                raise DatasetFormatError(f"{labels_path}: expected a header 'file,label', got {reader.fieldnames}")
            for row in reader:
                path = root / row["file"]
                samples.append(Sample(id=row["file"], path=path, target=int(row["label"])))
        missing = [s.path for s in samples if not s.path.is_file()]
        if missing:
            raise DatasetFormatError(
                f"{labels_path} lists {len(missing)} image(s) not in {root}, first: {missing[0].name}"
            )
        candidates = [root / "classes.csv", root.parent / "classes.csv"]
        self.classes_path = next((p for p in candidates if p.is_file()), None) or require_file(
            candidates[0], f"classes of ImageNet-style folder {root}", also_tried=candidates[1:]
        )
        self.wnids, self.class_names = read_classes(self.classes_path)
        super().__init__(root, samples, limit, seed)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def read_classes(path: Path) -> tuple[list[str], list[str]]:
    """(wnids, names) from a `classes.csv` with header index,wnid,name, indexed by class index."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"index", "name"} <= set(reader.fieldnames):
            raise DatasetFormatError(f"{path}: expected a header 'index,wnid,name', got {reader.fieldnames}")
        rows = sorted(((int(r["index"]), r.get("wnid", ""), r["name"]) for r in reader), key=lambda r: r[0])
    if [r[0] for r in rows] != list(range(len(rows))):
        raise DatasetFormatError(f"{path}: class indices are not 0..{len(rows) - 1}")
    return [r[1] or "" for r in rows], [r[2] for r in rows]
