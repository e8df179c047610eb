"""The same small stream through edge → cloud twice, once stored in SQLite and once in PostgreSQL:
``GET /results`` answers the same, apart from what legitimately differs (when each frame arrived,
how long each stage took). Needs ``PREPICM_TEST_POSTGRES_URL`` (skipped visibly otherwise)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from shared.wire import AnalyzeResult, EncodeResult
from tests.system.conftest import Services, send_frame, stored_results

N = 4


def _comparable(r: AnalyzeResult) -> dict[str, Any]:
    out = r.model_dump(exclude={"received_at", "timings_s"})
    for task in out["results"]:
        task.pop("seconds")
    return out


def test_sqlite_and_postgresql_store_the_same_results(services: Services, frames: list[bytes]) -> None:
    url = os.environ.get("PREPICM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL: set PREPICM_TEST_POSTGRES_URL=postgresql://user@host:port/db to run this")
    camera = f"pg-{uuid.uuid4().hex[:12]}"  # the PostgreSQL database is shared between runs
    lite = services.cloud(name="cloud-sqlite")
    pg = services.cloud(name="cloud-postgres", db=url)
    lite_edge = services.edge(lite.url, name="edge-sqlite")
    pg_edge = services.edge(pg.url, name="edge-postgres")
    services.start(lite, pg, lite_edge, pg_edge)
    ready = {svc.module + str(svc.port): svc.wait_ready() for svc in (lite, pg)}
    assert sorted(str(r["database"]) for r in ready.values()) == ["postgresql", "sqlite"]

    for edge in (lite_edge, pg_edge):
        for i in range(N):
            r = send_frame(edge, frames[i], camera, i)
            assert r.status_code == 200, r.text
            assert EncodeResult.model_validate(r.json()).delivered
        again = send_frame(edge, frames[0], camera, 0)  # a resend is a duplicate in both stores
        assert again.status_code == 200 and again.json()["cloud"]["duplicate"] is True

    from_sqlite, from_postgres = stored_results(lite, camera), stored_results(pg, camera)
    assert [x.frame_id for x in from_sqlite] == list(range(N))
    assert [_comparable(x) for x in from_postgres] == [_comparable(x) for x in from_sqlite]
    assert all(x.received_at > 0 and x.timings_s for x in from_postgres)
