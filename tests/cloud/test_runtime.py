"""The cloud applies the one thread-count owner (shared.runtime) at start, as the edge does."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

import shared.runtime
from cloud.main import create_app
from tests.cloud.conftest import make_settings


def test_start_applies_the_runtime_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            env_runtime: None) -> None:
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1  # differs from what torch chose by itself
    monkeypatch.setenv("PREPICM_TORCH_THREADS", str(wanted))
    try:
        with TestClient(create_app(make_settings(tmp_path, TASKS="efficientnet_lite0"))) as client:
            assert client.get("/readyz").status_code == 200
            applied = shared.runtime._active  # env_runtime cleared it: only the app's start sets it
            assert applied is not None and applied.torch_threads == wanted
            # torch keeps the count per thread: threads started after the app (the batchers' kind)
            # see the runtime's, wherever the lifespan ran
            seen: list[int] = []
            t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
            t.start()
            t.join()
            assert seen == [wanted]
    finally:
        torch.set_num_threads(before)
