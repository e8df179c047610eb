"""Edge and cloud as real processes on loopback ports, with fast settings: one encoder process,
BPG at level 0 (x265 ultrafast), 128×96 Kodak crops, one cheap task model (efficientnet_lite0,
local weights), short backoffs. Every service a test starts is stopped after it (SIGTERM, then
SIGKILL, then whatever its session left), and a failing test shows each service's log."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shared.wire import AnalyzeResult
from tests.edge.conftest import FAST, png_bytes
from tests.processes import ServiceProcess, free_port, service_env

CLOUD_TOKEN = "system-cloud-token-0123456789"
CAMERA_TOKEN = "system-camera-token-98765"
CLOUD_AUTH = {"Authorization": f"Bearer {CLOUD_TOKEN}"}
#: capture times start here; frame i of a test is captured at T0 + i
T0 = 1_700_000_000.0
#: one thread per library: the machine's cores are shared by both services and the test
THREADS = {"PREPICM_X265_POOLS": "1", "PREPICM_TORCH_THREADS": "1", "PREPICM_ORT_THREADS": "1"}

_SERVICES = pytest.StashKey[list[ServiceProcess]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for svc in item.stash.get(_SERVICES, []):
            report.sections.append((f"python -m {svc.module} on port {svc.port} ({svc.log_path})",
                                    svc.log_tail(20_000)))


class Services:
    """Builds (not starts) cloud and edge processes with this suite's settings; remembers them."""

    def __init__(self, tmp: Path, started: list[ServiceProcess]) -> None:
        self.tmp, self.started = tmp, started

    def cloud(self, *, port: int | None = None, db: str | None = None, name: str = "cloud",
              **overrides: object) -> ServiceProcess:
        port = port or free_port()
        values: dict[str, object] = {
            "HOST": "127.0.0.1", "PORT": port, "TOKEN": CLOUD_TOKEN, "DEV": False,
            "DATABASE_URL": db or f"sqlite:///{self.tmp / name / 'results.db'}",
            "TASKS": "efficientnet_lite0", "DEVICE": "cpu", "MAX_BATCH": 4, "MAX_DELAY_MS": 5,
            "MAX_BODY_BYTES": 256 * 1024, "MAX_PIXELS": 4_000_000, "DECODE_WORKERS": 1, **overrides,
        }
        return self._add(ServiceProcess("cloud", service_env("CLOUD", values, **THREADS), port,
                                        self.tmp / f"{name}.log"))

    def edge(self, cloud_url: str, *, port: int | None = None, spool: Path | None = None, name: str = "edge",
             **overrides: object) -> ServiceProcess:
        port = port or free_port()
        values: dict[str, object] = {
            **FAST, "DEV": False, "HOST": "127.0.0.1", "PORT": port, "CLOUD_URL": cloud_url,
            "CLOUD_TOKEN": CLOUD_TOKEN, "SPOOL_DIR": spool or self.tmp / f"{name}-spool", **overrides,
        }
        return self._add(ServiceProcess("edge", service_env("EDGE", values, **THREADS), port,
                                        self.tmp / f"{name}.log"))

    def _add(self, svc: ServiceProcess) -> ServiceProcess:
        self.started.append(svc)
        return svc

    @staticmethod
    def start(*services: ServiceProcess) -> None:
        """Start them all, then wait for each: they load side by side."""
        for svc in services:
            svc.start()
        for svc in services:
            svc.wait_ready()


@pytest.fixture
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    started: list[ServiceProcess] = []
    request.node.stash[_SERVICES] = started
    yield Services(tmp_path, started)
    for svc in started:
        svc.close()


@pytest.fixture(scope="session")
def frames(kodak_image: np.ndarray) -> list[bytes]:
    """Twelve different 128×96 crops of kodim23 as PNG (real content, cheap to encode)."""
    crops = []
    for i in range(12):
        y, x = 40 * (i % 4), 100 * (i // 4)
        crops.append(png_bytes(np.ascontiguousarray(kodak_image[y:y + 96, x:x + 128])))
    return crops


def send_frame(edge: ServiceProcess, png: bytes, camera: str, frame_id: int, **params: Any) -> httpx.Response:
    """What a camera does: one frame to the edge's POST /encode, captured at T0 + frame_id."""
    query = {"camera_id": camera, "frame_id": frame_id, "captured_at": T0 + frame_id, **params}
    return httpx.post(f"{edge.url}/encode", params=query, content=png, headers={"content-type": "image/png"},
                      timeout=60)


def stored_results(cloud: ServiceProcess, camera: str) -> list[AnalyzeResult]:
    r = httpx.get(f"{cloud.url}/results", params={"camera_id": camera, "limit": 1000}, headers=CLOUD_AUTH,
                  timeout=30)
    assert r.status_code == 200, r.text
    return [AnalyzeResult.model_validate(x) for x in r.json()]


def db_rows(db_file: Path, camera: str) -> list[tuple[int, float]]:
    """(frame_id, received_at) of every stored row of ``camera``, in the order they were inserted."""
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT frame_id, received_at FROM results WHERE camera_id = ? ORDER BY id",
                            (camera,)).fetchall()
    return [(int(f), float(t)) for f, t in rows]


def scrape(svc: ServiceProcess) -> str:
    r = httpx.get(f"{svc.url}/metrics", timeout=10)
    assert r.status_code == 200
    return r.text


def readyz(svc: ServiceProcess) -> httpx.Response:
    return httpx.get(f"{svc.url}/readyz", timeout=10)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)


def spool_frames(edge: ServiceProcess) -> int:
    r = readyz(edge)
    assert r.status_code == 200, r.text
    return int(r.json()["spool_frames"])
