"""Camera → edge → cloud over real HTTP between real processes: what the camera is told, what the
cloud stores and what both count."""

from __future__ import annotations

from shared.wire import EncodeResult
from tests.processes import metric
from tests.system.conftest import T0, Services, db_rows, scrape, send_frame, stored_results

N = 6


def test_frames_flow_from_camera_through_edge_to_cloud(services: Services, frames: list[bytes]) -> None:
    cloud = services.cloud()
    edge = services.edge(cloud.url)
    services.start(cloud, edge)
    camera = "flow-cam"

    answers = []
    for i in range(N):
        r = send_frame(edge, frames[i], camera, i)
        assert r.status_code == 200, r.text
        res = EncodeResult.model_validate(r.json())
        assert res.delivered and res.cloud is not None
        got = res.cloud
        assert (got.camera_id, got.frame_id, got.captured_at) == (camera, i, T0 + i)
        assert not got.duplicate
        # the cloud decoded what the edge encoded: same size, same bits, the quality travelled along
        assert (got.codec, got.width, got.height) == ("bpg", 128, 96) == (res.codec, res.width, res.height)
        assert got.bits == res.bits and got.quality == res.quality == 32
        [task] = got.results
        assert (task.task, task.kind) == ("efficientnet_lite0", "classification")
        top = task.output["top"]
        assert task.output["kind"] == "classification" and len(top) >= 1
        assert all(set(t) == {"index", "name", "score"} and 0.0 <= t["score"] <= 1.0 for t in top)
        assert [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
        answers.append(res)

    listed = stored_results(cloud, camera)
    assert [x.frame_id for x in listed] == list(range(N))
    assert listed == [a.cloud for a in answers]  # what the edge was told is exactly what was stored
    assert [f for f, _ in db_rows(services.tmp / "cloud" / "results.db", camera)] == list(range(N))

    bits = sum(a.bits for a in answers)
    e = scrape(edge)
    assert metric(e, "prepicm_edge_frames_total", camera=camera, outcome="delivered") == N
    assert metric(e, "prepicm_edge_frames_total", camera=camera) == N  # no other outcome
    assert metric(e, "prepicm_edge_frame_bits_count") == N
    assert metric(e, "prepicm_edge_frame_bits_sum") == bits
    for stage in ("decode_input", "encode", "upload"):
        assert metric(e, "prepicm_edge_stage_seconds_count", stage=stage) == N, stage
        assert metric(e, "prepicm_edge_stage_seconds_sum", stage=stage) > 0, stage
    assert metric(e, "prepicm_edge_spool_frames") == 0

    c = scrape(cloud)
    assert metric(c, "prepicm_cloud_frames_total", camera=camera, codec="bpg", outcome="analyzed") == N
    assert metric(c, "prepicm_cloud_frames_total", camera=camera) == N
    assert metric(c, "prepicm_cloud_duplicates_total") == 0
    assert metric(c, "prepicm_cloud_frame_bits_count") == N
    assert metric(c, "prepicm_cloud_frame_bits_sum") == bits
    for stage in ("decode", "queue"):
        assert metric(c, "prepicm_cloud_stage_seconds_count", stage=stage) == N, stage
    assert metric(c, "prepicm_cloud_batch_size_sum") == N  # every frame was in exactly one predict call
    assert 1 <= metric(c, "prepicm_cloud_batch_size_count") == metric(
        c, "prepicm_cloud_stage_seconds_count", stage="inference")
