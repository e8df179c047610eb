"""Readiness: 200 only while the models run and the database answers; 503 JSON otherwise."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloud.main import create_app
from cloud.store import ResultStore
from tests.cloud.conftest import AUTH, make_settings


def test_ready_reports_what_runs(client) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["database"] == "sqlite"
    assert body["tasks"] == {"yolov5n": "detection", "efficientnet_lite0": "classification"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_not_ready_before_the_lifespan_ran(tmp_path, bitstream: bytes) -> None:
    c = TestClient(create_app(make_settings(tmp_path)))  # no `with`: the lifespan never starts
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["error"] == "not_ready"
    r = c.post("/analyze", params={"camera_id": "c", "frame_id": 1, "captured_at": 1.0}, content=bitstream,
               headers=AUTH)
    assert r.status_code == 503 and r.json()["error"] == "not_ready"
    assert c.get("/healthz").status_code == 200


def test_not_ready_while_the_database_does_not_answer(tmp_path) -> None:
    with TestClient(create_app(make_settings(tmp_path, TASKS="efficientnet_lite0"))) as c:
        state = c.app.state.cloud  # type: ignore[attr-defined]
        good = state.store
        state.store = ResultStore("postgresql://nobody@127.0.0.1:1/none")  # nothing listens on port 1
        try:
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["error"] == "not_ready"
            assert "database" in r.json()["message"]
        finally:
            state.store.close()
            state.store = good
        assert c.get("/readyz").status_code == 200
