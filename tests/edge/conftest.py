from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from training.export import ExportOptions, export_artifact


@pytest.fixture(scope="session")
def edge_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported test_tiny artifact (ONNX + TorchScript + manifest); read-only for tests."""
    out = tmp_path_factory.mktemp("edge-npp-test_tiny")
    torch.manual_seed(3)  # random weights whose QA gains visibly depend on the conditioning
    export_artifact("test_tiny", out, options=ExportOptions(parity_kodak=0))
    return out


@pytest.fixture
def artifact_copy(edge_artifact: Path, tmp_path: Path) -> Path:
    """A private copy a test may tamper with."""
    dst = tmp_path / "artifact"
    shutil.copytree(edge_artifact, dst)
    return dst
