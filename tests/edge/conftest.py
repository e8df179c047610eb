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


# -- the edge service ------------------------------------------------------------------------------------


def png_bytes(rgb) -> bytes:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def small_frame(kodak_image):  # type: ignore[no-untyped-def]
    """A 128×96 crop of kodim23 (real content, cheap to encode)."""
    import numpy as np

    return np.ascontiguousarray(kodak_image[200:296, 300:428])


@pytest.fixture(scope="session")
def small_png(small_frame) -> bytes:  # type: ignore[no-untyped-def]
    return png_bytes(small_frame)


#: fast test settings: no NPP (not even the shipped one), one encoder process, BPG at level 0 (x265 ultrafast),
#: short backoffs
FAST = {"DEV": True, "NPP_ARTIFACT": None, "ENCODE_WORKERS": 1, "CODEC_OPTIONS": {"bpg": {"level": 0}},
        "RETRY_BACKOFF_S": 0.01, "DELIVERY_BACKOFF_MAX_S": 0.2, "CONNECT_TIMEOUT_S": 1.0, "UPLOAD_TIMEOUT_S": 10.0}


@pytest.fixture
def edge_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``edge_settings(**overrides)`` → EdgeSettings for a test (own spool under tmp_path)."""
    from edge.core.config import EdgeSettings

    def make(**overrides: object) -> EdgeSettings:
        values = {**FAST, "SPOOL_DIR": tmp_path / "spool", "CLOUD_URL": "http://127.0.0.1:9", **overrides}
        return EdgeSettings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    """A started TEST RECEIVER (see tests/edge/receiver.py), stopped after the test."""
    from tests.edge.receiver import TestReceiver

    r = TestReceiver().start()
    yield r
    r.stop()
