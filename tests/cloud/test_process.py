"""``python -m cloud`` as a real process on a loopback port, spoken to over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.paths import repo_root
from shared.wire import AnalyzeResult, ErrorBody

TOKEN = "process-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPICM_CLOUD_")}
    env.update(values)
    return env


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"python -m cloud exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"python -m cloud not ready within {timeout_s} s")


def test_the_real_server(tmp_path: Path, bitstream: bytes) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "cloud.log").open("wb")
    env = _env(PREPICM_CLOUD_HOST="127.0.0.1", PREPICM_CLOUD_PORT=str(port), PREPICM_CLOUD_TOKEN=TOKEN,
               PREPICM_CLOUD_DATABASE_URL=f"sqlite:///{tmp_path / 'db' / 'results.db'}",
               PREPICM_CLOUD_TASKS="efficientnet_lite0", PREPICM_CLOUD_MAX_PIXELS="40e6")
    proc = subprocess.Popen([sys.executable, "-m", "cloud"], cwd=repo_root(), env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, url)
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
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
        log.close()
    output = (tmp_path / "cloud.log").read_text()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (exit by signal 15)
    assert rc in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = _env(PREPICM_CLOUD_DATABASE_URL=f"sqlite:///{tmp_path / 'r.db'}")
    out = subprocess.run([sys.executable, "-m", "cloud"], cwd=repo_root(), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "PREPICM_CLOUD_TOKEN is required" in lines[0], out.stderr


@pytest.mark.parametrize("bad", [{"PREPICM_CLOUD_TASKS": "no_such_model"}, {"PREPICM_CLOUD_PORT": "99999"}])
def test_bad_settings_are_one_line(tmp_path: Path, bad: dict[str, str]) -> None:
    env = _env(PREPICM_CLOUD_DEV="true", **bad)
    out = subprocess.run([sys.executable, "-m", "cloud"], cwd=repo_root(), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("cloud: invalid settings:")
