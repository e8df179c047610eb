"""``python -m cloud`` as a real process on a loopback port, spoken to over real HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.paths import repo_root
from shared.wire import AnalyzeResult, ErrorBody
from tests.processes import ServiceProcess, free_port, service_env

TOKEN = "process-token-0123456789"


def test_the_real_server(tmp_path: Path, bitstream: bytes) -> None:
    port = free_port()
    env = service_env("CLOUD", {"HOST": "127.0.0.1", "PORT": port, "TOKEN": TOKEN,
                                "DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'results.db'}",
                                "TASKS": "efficientnet_lite0", "MAX_PIXELS": "40e6"})
    cloud = ServiceProcess("cloud", env, port, tmp_path / "cloud.log").start()
    url = cloud.url
    try:
        cloud.wait_ready()
        with httpx.Client(base_url=url, timeout=60.0, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            params = {"camera_id": "proc-cam", "frame_id": 1, "captured_at": 1_700_000_000.5}
            r = http.post("/analyze", params=params, content=bitstream,
                          headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 200, r.text
            res = AnalyzeResult.model_validate(r.json())
            assert res.codec == "bpg" and res.results[0].task == "efficientnet_lite0" and not res.duplicate
            assert http.post("/analyze", params=params, content=bitstream).json()["duplicate"] is True
            bad = http.post("/analyze", params={**params, "frame_id": 2}, content=b"garbage")
            assert bad.status_code == 415 and ErrorBody.model_validate(bad.json()).error == "unsupported_codec"
            assert httpx.post(f"{url}/analyze", params=params, content=bitstream).status_code == 401
            assert [x["frame_id"] for x in http.get("/results", params={"camera_id": "proc-cam"}).json()] == [1]
            text = httpx.get(f"{url}/metrics").text
        assert 'prepicm_cloud_frames_total{camera="proc-cam",codec="bpg",outcome="analyzed"} 1.0' in text
        assert "prepicm_cloud_duplicates_total 1.0" in text
        assert 'prepicm_cloud_batch_size_bucket{le="1.0"}' in text
        assert 'prepicm_cloud_stage_seconds_count{stage="decode"} 1.0' in text
    finally:
        rc = cloud.stop()
        cloud.close()
    output = cloud.log_text()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (exit by signal 15)
    assert rc in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = service_env("CLOUD", {"DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"})
    out = subprocess.run([sys.executable, "-m", "cloud"], cwd=repo_root(), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "PREPICM_CLOUD_TOKEN is required" in lines[0], out.stderr


@pytest.mark.parametrize("bad", [{"PREPICM_CLOUD_TASKS": "no_such_model"}, {"PREPICM_CLOUD_PORT": "99999"}])
def test_bad_settings_are_one_line(tmp_path: Path, bad: dict[str, str]) -> None:
    env = service_env("CLOUD", {"DEV": True}, **bad)
    out = subprocess.run([sys.executable, "-m", "cloud"], cwd=repo_root(), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("cloud: invalid settings:")
