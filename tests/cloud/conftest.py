"""Cloud test fixtures: real BPG bitstreams of Kodak crops, test settings and a running app.

One app (yolov5n at 320 px + efficientnet_lite0, real weights, a SQLite file in a temp folder)
serves most tests for the whole session; each test uses its own camera id, so tests never see
each other's frames.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cloud.core.config import CloudSettings
from cloud.main import create_app
from shared.codecs import get_codec
from shared.imageio import read_rgb
from shared.pipeline import EncodePipeline

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: detection at 320 px keeps the CPU tests fast; real weights all the same
TASK_OPTIONS = {"yolov5n": {"img_size": 320}}
_cameras = itertools.count()


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray
    bitstream: bytes


@pytest.fixture(scope="session")
def frames(shared_dir: Path) -> list[Frame]:
    """Three 256×384 Kodak crops, BPG-coded (x265 level 1 for speed) at QP 32."""
    pipe = EncodePipeline(get_codec("bpg", level=1))
    out = []
    for name in ("kodim23.png", "kodim05.png", "kodim15.png"):
        rgb = np.ascontiguousarray(read_rgb(shared_dir / "data" / "kodak" / name)[:256, :384])
        out.append(Frame(rgb, pipe.encode(rgb, 32).bitstream))
    return out


@pytest.fixture(scope="session")
def bitstream(frames: list[Frame]) -> bytes:
    return frames[0].bitstream


def make_settings(tmp: Path, **overrides: Any) -> CloudSettings:
    """Test settings: every field the tests depend on given, so PREPICM_CLOUD_* in the shell cannot leak in."""
    values: dict[str, Any] = {
        "TOKEN": TOKEN, "DEV": False, "DATABASE_URL": f"sqlite:///{tmp / 'db' / 'results.db'}",
        "TASKS": "yolov5n,efficientnet_lite0", "TASK_OPTIONS": TASK_OPTIONS, "DEVICE": "cpu",
        "MAX_BATCH": 8, "MAX_DELAY_MS": 5, "MAX_BODY_BYTES": 1024 * 1024, "MAX_PIXELS": 4_000_000,
        "MAX_INFLIGHT": 64, "DECODE_WORKERS": 2,
    }
    values.update(overrides)
    return CloudSettings(**values)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database the store supports. PostgreSQL runs share one database (the tests write under
    camera ids of their own and never drop anything)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'results.db'}"
    url = os.environ.get("PREPICM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL: set PREPICM_TEST_POSTGRES_URL=postgresql://user@host:port/db to run these")
    return url


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> CloudSettings:
    return make_settings(tmp_path_factory.mktemp("cloud"))


@pytest.fixture(scope="session")
def client(settings: CloudSettings, shared_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def camera() -> str:
    """A camera id no other test uses (the session's store is shared)."""
    return f"cam-{os.getpid()}-{next(_cameras)}"


@pytest.fixture
def analyze(client: TestClient, camera: str) -> Callable[..., Any]:
    """POST one bitstream as ``camera``: analyze(bitstream, frame_id, **query) → the response."""

    def post(bitstream: bytes, frame_id: Any = 0, headers: dict[str, str] | None = None, **query: Any) -> Any:
        offset = frame_id if isinstance(frame_id, int) else 0
        params = {"camera_id": camera, "frame_id": frame_id, "captured_at": 1_700_000_000.0 + offset, **query}
        return client.post("/analyze", params=params, content=bitstream, headers=AUTH if headers is None else headers)

    return post


def metric(client: TestClient, name: str, **labels: str) -> float:
    """A sample's value from the app's own registry (0 when absent)."""
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)
