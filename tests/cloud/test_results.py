"""GET /results: stored results by camera and capture time, bounded."""

from __future__ import annotations

import pytest

from shared.wire import AnalyzeResult
from tests.cloud.conftest import AUTH, Frame


def test_query_by_camera_and_time(client, analyze, camera: str, frames: list[Frame]) -> None:
    for fid in (3, 1, 2):  # captured_at = base + frame id
        assert analyze(frames[fid % 3].bitstream, frame_id=fid, tasks="efficientnet_lite0").status_code == 200
    r = client.get("/results", params={"camera_id": camera}, headers=AUTH)
    assert r.status_code == 200
    got = [AnalyzeResult.model_validate(x) for x in r.json()]
    assert [x.frame_id for x in got] == [1, 2, 3] and all(x.camera_id == camera for x in got)
    assert not any(x.duplicate for x in got)
    base = got[0].captured_at - 1
    r = client.get("/results", params={"camera_id": camera, "since": base + 2, "until": base + 3}, headers=AUTH)
    assert [x["frame_id"] for x in r.json()] == [2]
    r = client.get("/results", params={"camera_id": camera, "limit": 2}, headers=AUTH)
    assert [x["frame_id"] for x in r.json()] == [1, 2]
    r = client.get("/results", params={"camera_id": camera + "-nobody"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == []


def test_default_limit_is_bounded(client) -> None:
    r = client.get("/results", headers=AUTH)
    assert r.status_code == 200 and len(r.json()) <= 100


@pytest.mark.parametrize("query", [
    {"limit": 0}, {"limit": 1001}, {"limit": "many"}, {"since": -1}, {"since": 10, "until": 5},
    {"camera_id": "a/b"}, {"order": "desc"},
])
def test_bad_queries_are_422(client, query: dict[str, object]) -> None:
    r = client.get("/results", params=query, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_parameters" and r.json()["message"]
