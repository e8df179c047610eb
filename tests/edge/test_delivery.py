"""Forwarding to "the cloud" over real HTTP — a TEST RECEIVER (tests/edge/receiver.py), not the
product's cloud — and the spool's delivery when that receiver is down, failing or back."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from edge.main import create_app
from shared.wire import AnalyzeResult, EncodeResult, ErrorBody
from tests.edge.receiver import TestReceiver

PNG = {"content-type": "image/png"}


def _post(c: TestClient, png: bytes, frame_id: int, camera: str = "cam-d") -> tuple[int, dict[str, object]]:
    r = c.post("/encode", params={"camera_id": camera, "frame_id": frame_id, "captured_at": 1700000000 + frame_id},
               content=png, headers=PNG)
    return r.status_code, r.json()


def _value(c: TestClient, name: str, **labels: str) -> float:
    v = c.app.state.edge.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return 0.0 if v is None else float(v)


def _until(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_forwarded_frame_is_analyzed_and_embedded(edge_settings, receiver: TestReceiver, small_png: bytes,  # type: ignore[no-untyped-def]
                                                  small_frame) -> None:
    receiver.token = "cloud-secret"
    with TestClient(create_app(edge_settings(CLOUD_URL=receiver.url, CLOUD_TOKEN="cloud-secret"))) as c:
        status, body = _post(c, small_png, 1)
        assert status == 200, body
        res = EncodeResult.model_validate(body)
        assert res.delivered and res.cloud is not None
        assert isinstance(res.cloud, AnalyzeResult)
        assert (res.cloud.width, res.cloud.height) == (small_frame.shape[1], small_frame.shape[0])
        assert res.cloud.bits == res.bits and res.cloud.quality == 32 and res.timings_s["upload"] > 0
        got = receiver.received[0]
        assert got.authorization == "Bearer cloud-secret"
        assert got.content_type == "application/octet-stream" and got.body[:4] == b"BPG\xfb"
        assert (got.params.camera_id, got.params.frame_id, got.params.codec) == ("cam-d", 1, "bpg")
        assert got.params.captured_at == 1700000001
        assert _value(c, "prepicm_edge_frames_total", outcome="delivered", codec="bpg", camera="cam-d") == 1


def test_5xx_is_retried_with_backoff_and_4xx_is_not(edge_settings, receiver: TestReceiver,  # type: ignore[no-untyped-def]
                                                    small_png: bytes) -> None:
    with TestClient(create_app(edge_settings(CLOUD_URL=receiver.url, UPLOAD_RETRIES=2))) as c:
        receiver.fail_next(2, 503)
        status, body = _post(c, small_png, 1)
        assert status == 200 and body["delivered"] is True
        assert receiver.attempts == 3 and _value(c, "prepicm_edge_upload_retries_total") == 2
        receiver.fail_next(1, 422)
        status, body = _post(c, small_png, 2)
        assert status == 502 and ErrorBody.model_validate(body).error == "cloud_rejected"
        assert "422" in body["message"]
        assert receiver.attempts == 4  # one try: a 4xx is never retried
        assert len(c.app.state.edge.spool) == 0  # nor spooled  # type: ignore[attr-defined]
        assert _value(c, "prepicm_edge_frames_total", outcome="rejected", codec="bpg", camera="cam-d") == 1


def test_cloud_down_then_up_delivers_the_spool_in_order(edge_settings, small_png: bytes) -> None:  # type: ignore[no-untyped-def]
    cloud = TestReceiver()  # its port is free: nothing listens yet
    with TestClient(create_app(edge_settings(CLOUD_URL=cloud.url, UPLOAD_RETRIES=1))) as c:
        for i in range(1, 4):
            status, body = _post(c, small_png, i)
            assert status == 202 and body["delivered"] is False and body["cloud"] is None
        assert _value(c, "prepicm_edge_spool_frames") == 3
        assert _value(c, "prepicm_edge_frames_total", outcome="spooled", codec="bpg", camera="cam-d") == 3
        assert c.get("/readyz").json()["cloud_reachable"] is False
        assert c.get("/readyz").status_code == 200
        cloud.start()
        try:
            got = cloud.wait_for(3)
            assert [g.params.frame_id for g in got] == [1, 2, 3]
            _until(lambda: _value(c, "prepicm_edge_spool_frames") == 0)
            assert _value(c, "prepicm_edge_frames_total", outcome="spool_delivered", codec="bpg", camera="cam-d") == 3
            status, body = _post(c, small_png, 4)  # and new frames go straight through again
            assert status == 200 and body["delivered"] is True
        finally:
            cloud.stop()


def test_spooled_frame_the_cloud_rejects_is_dropped_not_retried(edge_settings, small_png: bytes) -> None:  # type: ignore[no-untyped-def]
    cloud = TestReceiver()
    with TestClient(create_app(edge_settings(CLOUD_URL=cloud.url, UPLOAD_RETRIES=0))) as c:
        for i in (1, 2):
            assert _post(c, small_png, i)[0] == 202
        cloud.fail_next(1, 422)
        cloud.start()
        try:
            got = cloud.wait_for(1)
            _until(lambda: len(c.app.state.edge.spool) == 0)  # type: ignore[attr-defined]
            assert [g.params.frame_id for g in got] == [2]
            assert cloud.attempts == 2
            assert _value(c, "prepicm_edge_frames_total", outcome="spool_rejected", codec="bpg", camera="cam-d") == 1
        finally:
            cloud.stop()


def test_spool_survives_a_restart_and_drops_the_oldest_when_full(edge_settings, small_png: bytes) -> None:  # type: ignore[no-untyped-def]
    cloud = TestReceiver()
    with TestClient(create_app(edge_settings(CLOUD_URL=cloud.url, UPLOAD_RETRIES=0))) as c:
        assert _post(c, small_png, 1)[0] == 202
        one = c.app.state.edge.spool.bytes  # type: ignore[attr-defined]
    settings = edge_settings(CLOUD_URL=cloud.url, UPLOAD_RETRIES=0, SPOOL_MAX_BYTES=int(2.5 * one))
    with TestClient(create_app(settings)) as c:
        assert len(c.app.state.edge.spool) == 1  # frame 1 waited through the restart  # type: ignore[attr-defined]
        for i in (2, 3, 4):
            assert _post(c, small_png, i)[0] == 202
        assert _value(c, "prepicm_edge_spool_dropped_total") == 2
        assert _value(c, "prepicm_edge_spool_frames") == 2
        cloud.start()
        try:
            got = cloud.wait_for(2)
            assert [g.params.frame_id for g in got] == [3, 4]
        finally:
            cloud.stop()


def test_camera_waits_no_retries_while_the_cloud_is_known_down(edge_settings, small_png: bytes) -> None:  # type: ignore[no-untyped-def]
    cloud = TestReceiver()
    with TestClient(create_app(edge_settings(CLOUD_URL=cloud.url, UPLOAD_RETRIES=3))) as c:
        assert _post(c, small_png, 1)[0] == 202
        status, body = _post(c, small_png, 2)
        assert status == 202 and "upload" not in body["timings_s"]  # queued behind frame 1 at once
