"""``python -m edge`` as a real process on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from shared.pipeline import decode
from tests.edge.receiver import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPICM_EDGE_")}
    env.update({"PREPICM_EDGE_DEV": "true", "PREPICM_EDGE_SPOOL_DIR": str(tmp_path / "spool"),
                "PREPICM_EDGE_ENCODE_WORKERS": "1", "PREPICM_EDGE_CODEC_OPTIONS": json.dumps({"bpg": {"level": 0}}),
                **extra})
    return env


def test_real_process_encodes_and_exports_metrics(tmp_path: Path, small_png: bytes, small_frame: np.ndarray) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge"], cwd=ROOT, env=_env(tmp_path, PREPICM_EDGE_PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else "edge exited"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "edge did not become ready in 60 s"
            time.sleep(0.1)
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
        assert "prepicm_edge_frame_bits_count 1.0" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = proc.stdout.read() if proc.stdout else ""
    # uvicorn shuts down gracefully (lifespan exit) and then re-raises the SIGTERM it caught
    assert proc.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log and "Traceback" not in log, log


def test_bad_settings_are_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    env = _env(tmp_path, PREPICM_EDGE_QUALITY="99")
    out = subprocess.run([sys.executable, "-m", "edge"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid settings" in lines[0] and "99" in lines[0]
    env = {**_env(tmp_path), "PREPICM_EDGE_DEV": "false"}
    out = subprocess.run([sys.executable, "-m", "edge"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "CLOUD_TOKEN is required" in out.stderr
