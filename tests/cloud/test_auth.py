"""Bearer token on /analyze and /results; health, readiness and metrics stay open."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cloud.main import create_app
from tests.cloud.conftest import TOKEN, make_settings, metric

BAD = {
    "missing": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "token prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "wrong scheme": {"Authorization": f"Basic {TOKEN}"},
    "no scheme": {"Authorization": TOKEN},
}


@pytest.mark.parametrize("case", list(BAD))
def test_analyze_needs_the_token(client, analyze, camera: str, bitstream: bytes, case: str) -> None:
    labels = {"outcome": "unauthorized", "codec": "unknown", "camera": "unknown"}
    before = metric(client, "prepicm_cloud_frames_total", **labels)
    r = analyze(bitstream, frame_id=1, headers=BAD[case])
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    # counted, but under no camera label: an unauthenticated caller cannot mint label values
    assert metric(client, "prepicm_cloud_frames_total", **labels) == before + 1
    assert metric(client, "prepicm_cloud_frames_total", outcome="unauthorized", codec="unknown", camera=camera) == 0


def test_unauthenticated_requests_learn_nothing_about_parameters(client) -> None:
    r = client.post("/analyze", params={"frame_id": "x"}, content=b"")
    assert r.status_code == 401


@pytest.mark.parametrize("case", list(BAD))
def test_results_need_the_token(client, case: str) -> None:
    r = client.get("/results", headers=BAD[case])
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"])
def test_open_endpoints(client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_dev_without_token_is_open(tmp_path, bitstream: bytes) -> None:
    settings = make_settings(tmp_path, TOKEN=None, DEV=True, TASKS="efficientnet_lite0")
    with TestClient(create_app(settings)) as c:
        r = c.post("/analyze", params={"camera_id": "dev", "frame_id": 1, "captured_at": 1.0}, content=bitstream)
        assert r.status_code == 200, r.text
        assert c.get("/results").status_code == 200
