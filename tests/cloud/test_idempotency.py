"""One result per (camera, frame): a repeat is answered from the store and counted once."""

from __future__ import annotations

import threading
import uuid

from fastapi.testclient import TestClient

from cloud.main import create_app
from shared.wire import AnalyzeResult
from tests.cloud.conftest import AUTH, Frame, make_settings, metric


def test_same_frame_twice(client, analyze, camera: str, frames: list[Frame]) -> None:
    store = client.app.state.cloud.store
    dups = metric(client, "prepicm_cloud_duplicates_total")
    first = analyze(frames[0].bitstream, frame_id=11)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    # a retry, even with another body, gets the stored answer without being decoded again
    second = analyze(frames[1].bitstream, frame_id=11)
    assert second.status_code == 200, second.text
    a, b = AnalyzeResult.model_validate(first.json()), AnalyzeResult.model_validate(second.json())
    assert b.duplicate and b.model_copy(update={"duplicate": False}) == a
    assert store.count(camera) == 1
    assert metric(client, "prepicm_cloud_duplicates_total") == dups + 1
    assert metric(client, "prepicm_cloud_frames_total", outcome="analyzed", codec="bpg", camera=camera) == 1
    assert metric(client, "prepicm_cloud_frames_total", outcome="duplicate", codec="bpg", camera=camera) == 1
    # another frame of the same camera is new
    assert analyze(frames[0].bitstream, frame_id=12).json()["duplicate"] is False
    assert store.count(camera) == 2


def test_concurrent_identical_requests_store_one(client, analyze, camera: str, frames: list[Frame]) -> None:
    """Both requests may decode and analyse; the unique constraint lets exactly one store."""
    responses = []
    barrier = threading.Barrier(3)

    def post() -> None:
        barrier.wait()
        responses.append(analyze(frames[2].bitstream, frame_id=21))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert sorted(r.json()["duplicate"] for r in responses) == [False, True, True]
    assert client.app.state.cloud.store.count(camera) == 1
    assert metric(client, "prepicm_cloud_frames_total", outcome="analyzed", codec="bpg", camera=camera) == 1


def test_duplicates_survive_a_restart(tmp_path, db_url: str, bitstream: bytes) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=db_url, TASKS="efficientnet_lite0")
    params = {"camera_id": f"restart-{uuid.uuid4().hex[:12]}", "frame_id": 1, "captured_at": 5.0}
    with TestClient(create_app(settings)) as c:
        assert c.post("/analyze", params=params, content=bitstream, headers=AUTH).json()["duplicate"] is False
    with TestClient(create_app(settings)) as c:  # a new process would see the same
        r = c.post("/analyze", params=params, content=bitstream, headers=AUTH)
        assert r.status_code == 200 and r.json()["duplicate"] is True
        assert metric(c, "prepicm_cloud_duplicates_total") == 1
        assert c.app.state.cloud.store.count(params["camera_id"]) == 1
