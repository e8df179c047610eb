"""POST /analyze end to end in-process: real BPG bitstreams, real yolov5n and efficientnet_lite0."""

from __future__ import annotations

from shared.tasks.coco_labels import coco91_names
from shared.wire import AnalyzeResult
from tests.cloud.conftest import Frame, metric


def test_round_trip_detection_and_classification(client, analyze, frames: list[Frame]) -> None:
    frame = frames[0]
    before = metric(client, "prepicm_cloud_frame_bits_count")
    r = analyze(frame.bitstream, frame_id=7)
    assert r.status_code == 200, r.text
    res = AnalyzeResult.model_validate(r.json())
    h, w = frame.rgb.shape[:2]
    assert (res.width, res.height, res.codec, res.frame_id) == (w, h, "bpg", 7)
    assert res.bits == 8 * len(frame.bitstream)
    assert res.bpp == res.bits / (w * h)
    assert res.decoder_id.startswith("bpg-") and not res.duplicate
    assert [t.task for t in res.results] == ["yolov5n", "efficientnet_lite0"]
    assert {"decode", "queue", "analyze:yolov5n", "analyze:efficientnet_lite0"} <= set(res.timings_s)

    det = res.results[0]
    assert det.kind == "detection" and det.output["image_size"] == [h, w]
    detections = det.output["detections"]
    assert detections, "yolov5n finds nothing on a Kodak crop"
    names = set(coco91_names())
    for d in detections:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h, d
        assert d["name"] in names and 0 < d["score"] <= 1
    assert coco91_names()[detections[0]["category_id"]] == detections[0]["name"]

    cls = res.results[1]
    assert cls.kind == "classification"
    top = cls.output["top"]
    assert len(top) >= 3 and all(0 <= t["index"] < 1000 and t["name"] for t in top)
    scores = [t["score"] for t in top]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    assert metric(client, "prepicm_cloud_frame_bits_count") == before + 1
    assert metric(client, "prepicm_cloud_frames_total", outcome="analyzed", codec="bpg", camera=res.camera_id) == 1


def test_tasks_subset_and_case(analyze, frames: list[Frame]) -> None:
    r = analyze(frames[1].bitstream, frame_id=1, tasks="EfficientNet_Lite0")
    assert r.status_code == 200, r.text
    res = AnalyzeResult.model_validate(r.json())
    assert [t.task for t in res.results] == ["efficientnet_lite0"]
    assert "analyze:yolov5n" not in res.timings_s


def test_edge_fields_are_kept(analyze, frames: list[Frame]) -> None:
    r = analyze(frames[2].bitstream, frame_id=3, codec="bpg", npp="npp-test", quality=32, plain_bits=123456)
    assert r.status_code == 200, r.text
    res = AnalyzeResult.model_validate(r.json())
    assert (res.npp, res.quality, res.plain_bits) == ("npp-test", 32, 123456)


def test_other_codecs_decode_too(analyze, frames: list[Frame]) -> None:
    from shared.pipeline import EncodePipeline

    jpeg = EncodePipeline("jpeg").encode(frames[0].rgb, 75).bitstream
    r = analyze(jpeg, frame_id=4, tasks="efficientnet_lite0")
    assert r.status_code == 200, r.text
    assert r.json()["codec"] == "jpeg"
