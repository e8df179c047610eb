"""The result store against every database it supports (the ``db_url`` fixture: SQLite always,
PostgreSQL when ``PREPICM_TEST_POSTGRES_URL`` names one, skipped visibly otherwise)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store import ResultStore, engine_url
from shared.wire import AnalyzeResult, TaskResult


@pytest.fixture
def store(db_url: str) -> Iterator[ResultStore]:
    s = ResultStore(db_url)
    s.create_schema()
    yield s
    s.close()


@pytest.fixture
def cam() -> str:
    return f"store-{uuid.uuid4().hex[:12]}"


def result(camera: str, frame: int, captured_at: float = 1000.0, bits: int = 8000) -> AnalyzeResult:
    return AnalyzeResult(
        camera_id=camera, frame_id=frame, captured_at=captured_at, codec="bpg", width=64, height=32, bits=bits,
        bpp=bits / (64 * 32), decoder_id="bpg-test", received_at=captured_at + 0.5, timings_s={"decode": 0.01},
        results=[TaskResult(task="yolov5n", kind="detection", seconds=0.02,
                            output={"kind": "detection", "image_size": [32, 64], "detections": []})])


def test_add_get_round_trip(store: ResultStore, cam: str) -> None:
    r = result(cam, 1)
    stored = store.add(r)
    assert not stored.duplicate and stored.result == r
    assert store.get(cam, 1) == r
    assert store.get(cam, 2) is None
    assert store.count(cam) == 1
    store.ping()


def test_second_add_returns_the_first(store: ResultStore, cam: str) -> None:
    first = result(cam, 5, bits=8000)
    store.add(first)
    again = store.add(result(cam, 5, bits=99999))  # a retry whose answer would differ
    assert again.duplicate and again.result == first
    assert store.count(cam) == 1


def test_concurrent_identical_adds_store_one(db_url: str, cam: str) -> None:
    """The unique constraint settles the race: one writer wins, the others get its row."""
    stores = [ResultStore(db_url) for _ in range(4)]
    stores[0].create_schema()
    barrier = threading.Barrier(len(stores))
    outcomes: list[bool] = []

    def add(s: ResultStore, i: int) -> None:
        barrier.wait()
        outcomes.append(s.add(result(cam, 9, bits=1000 + i)).duplicate)

    threads = [threading.Thread(target=add, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == [False, True, True, True]
    assert stores[0].count(cam) == 1
    for s in stores:
        s.close()


def test_survives_a_restart(db_url: str, cam: str) -> None:
    a = ResultStore(db_url)
    a.create_schema()
    a.add(result(cam, 1))
    a.close()
    b = ResultStore(db_url)
    b.create_schema()  # idempotent on an existing schema
    assert b.add(result(cam, 1)).duplicate
    assert b.count(cam) == 1
    b.close()


def test_query_filters_order_and_limit(store: ResultStore, cam: str) -> None:
    other = cam + "-other"
    for i, t in enumerate([30.0, 10.0, 20.0, 40.0]):
        store.add(result(cam, i, captured_at=t))
    store.add(result(other, 0, captured_at=15.0))
    assert [r.captured_at for r in store.query(cam)] == [10.0, 20.0, 30.0, 40.0]
    assert [r.captured_at for r in store.query(cam, since=20.0, until=40.0)] == [20.0, 30.0]
    assert [r.frame_id for r in store.query(cam, limit=2)] == [1, 2]
    assert [r.camera_id for r in store.query(since=10.0, until=20.0) if r.camera_id in (cam, other)] == [cam, other]
    assert store.query(cam, since=100.0) == []


def test_postgresql_urls_use_psycopg3() -> None:
    assert engine_url("postgresql://u@h:5432/db").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_sqlite_parent_folder_is_created(tmp_path: Path) -> None:
    s = ResultStore(f"sqlite:///{tmp_path / 'a' / 'b' / 'r.db'}")
    s.create_schema()
    assert (tmp_path / "a" / "b" / "r.db").is_file()
    s.close()
