"""``python -m edge`` as a real process on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from shared.pipeline import decode
from tests.edge.conftest import FAST
from tests.processes import ROOT, ServiceProcess, free_port, service_env


def _env(tmp_path: Path, **extra: object) -> dict[str, str]:
    return service_env("EDGE", {**FAST, "SPOOL_DIR": tmp_path / "spool", **extra})


def test_real_process_encodes_and_exports_metrics(tmp_path: Path, small_png: bytes, small_frame: np.ndarray) -> None:
    port = free_port()
    edge = ServiceProcess("edge", _env(tmp_path, PORT=port), port, tmp_path / "edge.log").start()
    base = edge.url
    try:
        edge.wait_ready(60)
        r = httpx.post(f"{base}/encode", params={"camera_id": "proc-cam", "frame_id": 1, "forward": "false"},
                       content=small_png, headers={"content-type": "image/png"}, timeout=30)
        assert r.status_code == 200, r.text
        assert int(r.headers["x-prepicm-bits"]) == 8 * len(r.content)
        assert decode(r.content).image.shape == small_frame.shape
        bad = httpx.post(f"{base}/encode", params={"camera_id": "proc-cam", "frame_id": 2}, content=b"nope",
                         headers={"content-type": "image/png"}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_image"
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'prepicm_edge_frames_total{camera="proc-cam",codec="bpg",outcome="encoded"} 1.0' in metrics
        assert 'prepicm_edge_frames_total{camera="proc-cam",codec="bpg",outcome="invalid"} 1.0' in metrics
        assert 'prepicm_edge_frame_bits_count{camera="proc-cam"} 1.0' in metrics
    finally:
        rc = edge.stop(20)
        edge.close()
    log = edge.log_text()
    # uvicorn shuts down gracefully (lifespan exit) and then re-raises the SIGTERM it caught
    assert rc in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log and "Traceback" not in log, log


def test_bad_settings_are_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    env = _env(tmp_path, QUALITY=99)
    out = subprocess.run([sys.executable, "-m", "edge"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid settings" in lines[0] and "99" in lines[0]
    env = _env(tmp_path, DEV=False)
    out = subprocess.run([sys.executable, "-m", "edge"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "CLOUD_TOKEN is required" in out.stderr
