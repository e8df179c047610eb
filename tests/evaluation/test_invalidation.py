"""Resumed sweeps recompute exactly what a change affects: a new decoder re-decodes and re-infers
(no re-encode), new task options re-infer (no re-encode), a new annotations file re-scores only
(no encode, no inference), and an unchanged re-run does nothing at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluation.sweep import CodecSpec, SweepConfig, SweepResult, run_sweep
from shared.codecs.pillow_codecs import JpegCodec


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = JpegCodec.decode

    def counting(self: JpegCodec, data: bytes) -> np.ndarray:
        calls.append(len(data))
        return original(self, data)

    monkeypatch.setattr(JpegCodec, "decode", counting)
    return calls


def _run(kind: str, root: Path, task: str, model: Any, out: Path, cache: Path, **kw: Any) -> SweepResult:
    cfg = SweepConfig(kind, str(root), task, [CodecSpec("jpeg", [30])], out=str(out), limit=2,
                      cache_dir=str(cache), workers=1, progress=False, **kw)
    return run_sweep(cfg, model=model)


def test_unchanged_rerun_in_place_does_nothing(tmp_path: Path, imagenet_val: Path, classifier: Any,
                                               decodes: list[int]) -> None:
    _run("imagenet_folder", imagenet_val, "efficientnet_lite0", classifier, tmp_path / "o", tmp_path / "c")
    decodes.clear()
    res = _run("imagenet_folder", imagenet_val, "efficientnet_lite0", classifier, tmp_path / "o", tmp_path / "c")
    assert (res.stats.points_resumed, res.stats.points_computed, res.stats.images_encoded) == (1, 0, 0)
    assert res.stats.inferences == 0 and decodes == []


def test_a_new_decoder_redecodes_and_reinfers_but_never_reencodes(
        tmp_path: Path, imagenet_val: Path, classifier: Any, decodes: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = _run("imagenet_folder", imagenet_val, "efficientnet_lite0", classifier, tmp_path / "o", tmp_path / "c")
    old_id = first.summary["points"][0]["decoder"]
    decodes.clear()
    monkeypatch.setattr(JpegCodec, "decoder_id", lambda self: old_id + "-patched")
    res = _run("imagenet_folder", imagenet_val, "efficientnet_lite0", classifier, tmp_path / "o", tmp_path / "c")
    assert res.stats.points_computed == 1 and res.stats.images_encoded == 0 and res.stats.cache_hits == 2
    assert len(decodes) == 2  # decoded metrics were keyed by the old decoder: recomputed
    assert res.stats.inferences == 2  # task outputs of the decoded images too; the pristine pass is kept
    assert res.summary["points"][0]["decoder"] == old_id + "-patched"


def test_task_options_reinfer_and_dataset_options_rescore(tmp_path: Path, coco_val: Path) -> None:
    tasks = pytest.importorskip("shared.tasks")
    out, cache = tmp_path / "o", tmp_path / "c"
    base = _run("coco", coco_val, "yolov5n", tasks.get_task("yolov5n"), out, cache)
    assert base.stats.inferences == 4  # 2 pristine + 2 decoded

    strict = _run("coco", coco_val, "yolov5n", tasks.get_task("yolov5n", conf_thres=0.5), out, cache)
    assert strict.stats.images_encoded == 0 and strict.stats.points_computed == 1
    assert strict.stats.inferences == 4  # new options: pristine and decoded outputs both recomputed
    assert strict.summary["task"]["options"]["conf_thres"] == 0.5

    ann = json.loads((coco_val / "annotations" / "instances_val2017.json").read_text())
    first_two = sorted(im["id"] for im in ann["images"])[:2]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] != first_two[0]]
    edited = tmp_path / "instances_edited.json"
    edited.write_text(json.dumps(ann))
    model = tasks.get_task("yolov5n")
    rescored = _run("coco", coco_val, "yolov5n", model, out, cache, dataset_options={"annotations": str(edited)})
    assert rescored.stats.images_encoded == 0 and rescored.stats.inferences == 0  # same pixels, same model
    assert rescored.stats.points_computed == 1  # but the scores depend on the labels
    assert rescored.summary["dataset"]["annotations_sha256"] != base.summary["dataset"]["annotations_sha256"]
    assert rescored.summary["points"][0]["map"] != base.summary["points"][0]["map"]
