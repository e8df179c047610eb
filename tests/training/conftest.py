from __future__ import annotations

from pathlib import Path

import pytest

from training.export import ExportOptions, export_artifact


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported (untrained) test_tiny artifact, parity-checked on a real Kodak image."""
    out = tmp_path_factory.mktemp("npp-test_tiny")
    export_artifact("test_tiny", out, options=ExportOptions(parity_kodak=1, parity_kodak_crop=96))
    return out
