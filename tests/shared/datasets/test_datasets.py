from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from shared.datasets import DATASETS, CocoDataset, DatasetNotFoundError, ImageNetFolder, Sample, open_dataset
from shared.registry import RegistryError


def test_registry_names() -> None:
    assert set(DATASETS.names()) == {"imagenet_folder", "coco", "folder"}
    with pytest.raises(RegistryError, match=r"imagenet_folder"):
        open_dataset("imagenet", "/nowhere")


def test_imagenet_val(data_dir: Path) -> None:
    root = data_dir / "imagenet" / "val"
    ds = open_dataset("imagenet_folder", root)
    assert isinstance(ds, ImageNetFolder)
    with (root / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(ds) == len(rows) == 1000
    assert ds.ground_truth == "labels"
    assert [s.id for s in ds][:5] == [r["file"] for r in rows[:5]]  # labels.csv order is kept
    s = ds[0]
    assert isinstance(s, Sample) and s.target == int(rows[0]["label"]) and s.path == root / rows[0]["file"]
    rgb = s.load()
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags.writeable
    assert ds.num_classes == 1000 and ds.class_names[0].startswith("tench")  # classes.csv from the parent
    assert ds.classes_path == data_dir / "imagenet" / "classes.csv"


def test_limit_and_seeded_subset(data_dir: Path) -> None:
    root = data_dir / "imagenet" / "val"
    full = open_dataset("imagenet_folder", root)
    first = open_dataset("imagenet_folder", root, limit=10)
    assert first.ids == full.ids[:10] and "10 of 1000" in repr(first)
    a = open_dataset("imagenet_folder", root, limit=20, seed=3)
    b = open_dataset("imagenet_folder", root, limit=20, seed=3)
    c = open_dataset("imagenet_folder", root, limit=20, seed=4)
    assert a.ids == b.ids != c.ids
    order = {i: k for k, i in enumerate(full.ids)}
    assert [order[i] for i in a.ids] == sorted(order[i] for i in a.ids)  # original order kept
    with pytest.raises(ValueError):
        open_dataset("imagenet_folder", root, limit=-1)


def test_coco_val(data_dir: Path) -> None:
    ds = open_dataset("coco", data_dir / "coco", split="val2017")
    assert isinstance(ds, CocoDataset)
    assert len(ds) == 79 and ds.ground_truth == "coco"
    assert len(ds.category_ids) == 80 and ds.category_ids == sorted(ds.category_ids)
    assert sum(len(s.target.annotations) for s in ds) == 624
    s = ds[0]
    assert s.id == f"{s.target.image_id:012d}.jpg"
    rgb = s.load()
    assert rgb.shape[:2] == (s.target.height, s.target.width)
    sub = open_dataset("coco", data_dir / "coco" / "val2017", limit=5)  # the images folder itself
    assert isinstance(sub, CocoDataset)
    assert sub.image_ids == ds.image_ids[:5]


def test_folder_is_pseudo_ground_truth(data_dir: Path) -> None:
    ds = open_dataset("folder", data_dir / "kodak")
    assert len(ds) == 24 and ds.ground_truth == "pseudo" and "pseudo ground truth" in repr(ds)
    assert ds.ids[0] == "kodim01.png" and ds[0].target is None
    assert ds[0].load().shape == (512, 768, 3)


def test_missing_paths_name_what_and_where(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"ImageNet-style image folder.*nope"):
        open_dataset("imagenet_folder", tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match=r"labels.csv"):
        open_dataset("imagenet_folder", tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"image folder.*holds no images"):
        open_dataset("folder", tmp_path)
    images = tmp_path / "val2017"
    images.mkdir()
    shutil.copy(data_dir / "coco" / "val2017" / "000000000139.jpg", images)
    with pytest.raises(DatasetNotFoundError) as e:
        open_dataset("coco", tmp_path, split="val2017")
    assert str(tmp_path / "annotations" / "instances_val2017.json") in str(e.value)
    # classes.csv missing in both places it is looked for
    (tmp_path / "inet").mkdir()
    shutil.copy(data_dir / "imagenet" / "val" / "ILSVRC2012_val_00000347.JPEG", tmp_path / "inet")
    (tmp_path / "inet" / "labels.csv").write_text("file,label\nILSVRC2012_val_00000347.JPEG,65\n")
    with pytest.raises(DatasetNotFoundError, match=r"classes.csv"):
        open_dataset("imagenet_folder", tmp_path / "inet")
