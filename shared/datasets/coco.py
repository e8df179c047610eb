"""COCO detection data: an images folder and a standard `instances_*.json` (pycocotools)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.datasets.base import DatasetFormatError, ImageDataset, Sample, require_dir, require_file


@dataclass(frozen=True)
class CocoTarget:
    """A COCO image id and its annotation dicts (bbox x, y, w, h in original pixels)."""

    image_id: int
    annotations: list[dict[str, Any]] = field(default_factory=list)
    width: int = 0
    height: int = 0


class CocoDataset(ImageDataset):
    """COCO images with their annotations, ordered by image id.

    `root` is either the COCO folder (holding `<split>/` and `annotations/instances_<split>.json`)
    or the images folder itself (then the annotations are looked for beside it, or pass them).
    """

    kind = "coco"
    ground_truth = "coco"

    def __init__(
        self,
        root: str | Path,
        split: str = "val2017",
        annotations: str | Path | None = None,
        limit: int | None = None,
        seed: int | None = None,
    ) -> None:
        root = Path(root)
        images_dir = root / split if (root / split).is_dir() else root
        require_dir(images_dir, f"COCO images ({split})")
        if annotations is not None:
            ann_path = require_file(Path(annotations), "COCO instances json")
        else:
            candidates = [
                root / "annotations" / f"instances_{split}.json",
                images_dir.parent / "annotations" / f"instances_{split}.json",
            ]
            ann_path = next((p for p in candidates if p.is_file()), None) or require_file(
                candidates[0], f"COCO instances json for {split}", also_tried=candidates[1:]
            )
        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            try:
                coco = COCO(str(ann_path))
            except (KeyError, ValueError) as e:
                raise DatasetFormatError(f"{ann_path}: not a COCO instances file ({e})") from e
        self.coco = coco
        self.annotations_path = ann_path
        self.images_dir = images_dir
        self.category_ids: list[int] = sorted(coco.getCatIds())
        self.category_names: dict[int, str] = {c["id"]: c["name"] for c in coco.loadCats(self.category_ids)}
        samples: list[Sample] = []
        for img_id in sorted(coco.getImgIds()):
            info = coco.imgs[img_id]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
            path = images_dir / info["file_name"]
            samples.append(
                Sample(
                    id=info["file_name"],
                    path=path,
                    target=CocoTarget(img_id, anns, int(info.get("width", 0)), int(info.get("height", 0))),
                )
            )
        missing = [s.path for s in samples if not s.path.is_file()]
        if missing:
            raise DatasetFormatError(
                f"{ann_path} lists {len(missing)} image(s) not in {images_dir}, first: {missing[0].name}"
            )
        super().__init__(images_dir, samples, limit, seed)

    @property
    def image_ids(self) -> list[int]:
        """COCO image ids of the selected samples (restrict COCOeval's imgIds to these)."""
        return [s.target.image_id for s in self.samples]
