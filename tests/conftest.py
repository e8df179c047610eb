"""Test-suite wide options: markers for GPU, TensorRT and slow tests are skipped visibly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _has_gpu() -> tuple[bool, str]:
    if shutil.which("nvidia-smi") is None:
        return False, "no NVIDIA GPU on this machine (nvidia-smi not found)"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False, "nvidia-smi did not answer"
    return (out.returncode == 0 and "GPU" in out.stdout), "nvidia-smi lists no GPU"


def _has_tensorrt() -> tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, "TensorRT is not installed (pip install 'prepicm[tensorrt]')"
    return True, ""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--runslow") or os.environ.get("PREPICM_RUN_SLOW") == "1"
    gpu_ok, gpu_why = _has_gpu()
    trt_ok, trt_why = _has_tensorrt() if gpu_ok else (False, gpu_why)
    for item in items:
        if item.get_closest_marker("slow") and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run with --runslow or PREPICM_RUN_SLOW=1"))
        if item.get_closest_marker("gpu") and not gpu_ok:
            item.add_marker(pytest.mark.skip(reason=f"needs a GPU: {gpu_why}"))
        if item.get_closest_marker("tensorrt") and not trt_ok:
            item.add_marker(pytest.mark.skip(reason=f"needs TensorRT: {trt_why}"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    from shared.paths import shared_data_dir

    root = shared_data_dir()
    if not (root / "data").is_dir():
        pytest.skip(f"shared data folder not found at {root} (set PREPICM_SHARED_DIR)")
    return root


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return shared_dir / "data"


@pytest.fixture(scope="session")
def kodak_image(shared_dir: Path):  # type: ignore[no-untyped-def]
    from shared.imageio import read_rgb

    return read_rgb(shared_dir / "data" / "kodak" / "kodim23.png")



@pytest.fixture
def env_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the (monkeypatched) environment: forget any that an app built in-process
    applied to the whole process earlier in the session."""
    monkeypatch.setattr("shared.runtime._active", None)
