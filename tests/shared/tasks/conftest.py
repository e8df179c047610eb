from __future__ import annotations

from pathlib import Path

import pytest

from shared.paths import shared_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir() / "data"
    if not d.is_dir():
        pytest.skip(f"shared data folder not found at {d} (set PREPICM_SHARED_DIR)")
    return d
