"""Task metrics against hand-computed answers and against pycocotools itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.metrics.classification import cross_entropy, kl_divergence, top1_agreement, topk_accuracy, topk_correct
from shared.metrics.coco import CocoPerImage, coco_map
from shared.metrics.detection import f1_from_counts, match_detections, pseudo_counts, soft_distortion_from_counts
from shared.tasks.outputs import DetectionOutput


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_topk_on_crafted_logits() -> None:
    logits = np.array(
        [
            [5.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0],  # label 0 ranked 1st
            [0.0, 5.0, 4.0, 3.0, 2.0, 1.0, -1.0],  # label 0 ranked 6th
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # label 2 ranked 5th
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # label 1 ranked 6th
        ]
    )
    probs = _softmax(logits)
    labels = [0, 0, 2, 1]
    assert topk_correct(probs, labels, 1).tolist() == [True, False, False, False]
    assert topk_correct(probs, labels, 5).tolist() == [True, False, True, False]
    assert topk_accuracy(probs, labels, 1) == 0.25
    assert topk_accuracy(probs, labels, 5) == 0.5


def test_topk_ties_count_against_label() -> None:
    probs = np.array([[0.25, 0.25, 0.25, 0.25]])
    assert topk_correct(probs, [0], 1).tolist() == [True]  # lowest index wins a tie (stable sort)
    assert topk_correct(probs, [1], 1).tolist() == [False]
    assert topk_correct(probs, [3], 4).tolist() == [True]


def test_cross_entropy_and_kl_known_values() -> None:
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    assert cross_entropy(p, [0, 2]) == pytest.approx([math.log(2), -math.log(0.7)])
    ref = np.array([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    q = np.array([[0.25, 0.75, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    expected0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(ref, q) == pytest.approx([expected0, 0.0], abs=1e-12)
    assert top1_agreement(ref, q).tolist() == [False, True]


def _det(boxes: list[list[float]], scores: list[float], cats: list[int]) -> DetectionOutput:
    return DetectionOutput(np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(cats),
                           [""] * len(scores))


def test_matching_f1_and_soft_distortion() -> None:
    ref = _det([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], [0.9, 0.8, 0.3], [1, 2, 1])
    # first box shifted by 1 px (IoU 81/119), second box wrong class, third missing; one extra box
    test = _det([[1, 0, 11, 10], [20, 20, 30, 30], [70, 70, 80, 80]], [0.9, 0.8, 0.6], [1, 3, 1])
    m = match_detections(ref, test)
    assert [(i, j) for i, j, _ in m] == [(0, 0)]
    assert m[0][2] == pytest.approx(90 / 110)
    c = pseudo_counts(ref, test)
    assert (c.tp, c.fp, c.fn) == (1, 2, 2)
    assert f1_from_counts([c]) == pytest.approx(2 / (2 + 2 + 2))
    assert c.soft_matched == pytest.approx(90 / 110 * 0.9)
    assert c.soft_mass == pytest.approx(0.9 + 0.8 + 0.3 + 0.9 + 0.8 + 0.6)
    assert soft_distortion_from_counts([c]) == pytest.approx(1 - 2 * 0.9 * 90 / 110 / 4.3)
    same = pseudo_counts(ref, ref)
    assert f1_from_counts([same]) == 1.0 and soft_distortion_from_counts([same]) == pytest.approx(0.0)


def _hand_made_coco():
    from pycocotools.coco import COCO

    images = [{"id": i, "width": 100, "height": 100, "file_name": f"{i}.jpg"} for i in (1, 2, 3)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 20], "area": 800, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 0},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [60, 60, 30, 30], "area": 900, "iscrowd": 0},
        {"id": 5, "image_id": 3, "category_id": 2, "bbox": [20, 20, 20, 40], "area": 800, "iscrowd": 0},
        {"id": 6, "image_id": 3, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 1},
    ]
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    gt.createIndex()
    dets = {
        1: _det([[10, 10, 40, 40], [52, 50, 90, 72], [0, 0, 5, 5]], [0.9, 0.7, 0.6], [1, 2, 1]),
        2: _det([[2, 2, 50, 52], [60, 60, 85, 92], [30, 30, 70, 70]], [0.95, 0.5, 0.8], [1, 1, 1]),
        3: _det([[20, 22, 40, 60], [10, 10, 30, 30]], [0.4, 0.85], [2, 1]),
    }
    return gt, dets


def _cocoeval_stats(gt, dets, image_ids):
    import contextlib
    import io

    from pycocotools.cocoeval import COCOeval

    from shared.metrics.coco import coco_results

    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(coco_results(dets)), "bbox")
        ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_coco_map_equals_pycocotools_on_hand_made_case() -> None:
    gt, dets = _hand_made_coco()
    stats = _cocoeval_stats(gt, dets, [1, 2, 3])
    scores = coco_map(gt, dets, [1, 2, 3])
    assert 0 < scores.map < 1
    assert scores.map == stats[0] and scores.ap50 == stats[1] and scores.ap75 == stats[2]
    # Perfect detections → 1.0
    perfect = {
        a["image_id"]: None for a in gt.dataset["annotations"]
    }
    perfect_dets = {}
    for iid in perfect:
        anns = [a for a in gt.dataset["annotations"] if a["image_id"] == iid and not a["iscrowd"]]
        perfect_dets[iid] = _det([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                                 [0.9] * len(anns), [a["category_id"] for a in anns])
    assert coco_map(gt, perfect_dets, [1, 2, 3]).map == pytest.approx(1.0)
    assert coco_map(gt, {}, [1, 2, 3]).map == 0.0


def test_weighted_coco_matches_cocoeval_on_duplicated_images() -> None:
    gt, dets = _hand_made_coco()
    per = CocoPerImage(gt, dets, [1, 2, 3])
    m, a50 = per.score()
    stats = _cocoeval_stats(gt, dets, [1, 2, 3])
    assert m == pytest.approx(stats[0], abs=1e-12) and a50 == pytest.approx(stats[1], abs=1e-12)
    # Weight 0 for image 2 equals evaluating images 1 and 3 only.
    sub = _cocoeval_stats(gt, dets, [1, 3])
    m2, a502 = per.score(np.array([1.0, 0.0, 1.0]))
    assert m2 == pytest.approx(sub[0], abs=1e-12) and a502 == pytest.approx(sub[1], abs=1e-12)
    # Weight 2 for image 3 equals a dataset holding a renamed copy of image 3.
    from pycocotools.coco import COCO

    ds = {k: list(v) for k, v in gt.dataset.items()}
    ds["images"].append({"id": 4, "width": 100, "height": 100, "file_name": "4.jpg"})
    ds["annotations"] += [dict(a, id=100 + a["id"], image_id=4) for a in gt.dataset["annotations"]
                          if a["image_id"] == 3]
    gt2 = COCO()
    gt2.dataset = ds
    gt2.createIndex()
    dup = _cocoeval_stats(gt2, {**dets, 4: dets[3]}, [1, 2, 3, 4])
    m3, _ = per.score(np.array([1.0, 1.0, 2.0]))
    assert m3 == pytest.approx(dup[0], abs=1e-9)


def test_coco_map_on_real_annotations(shared_dir) -> None:
    """Ground-truth boxes as detections score 1.0 on the shared COCO val annotations."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(shared_dir / "data/coco/annotations/instances_val2017.json"))
    ids = sorted(gt.getImgIds())[:10]
    dets = {}
    for iid in ids:
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[iid])) if not a["iscrowd"]]
        dets[iid] = _det([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                         [1.0] * len(anns), [a["category_id"] for a in anns])
    assert coco_map(gt, dets, ids).map == pytest.approx(1.0)
    assert CocoPerImage(gt, dets, ids).score()[0] == pytest.approx(1.0)
