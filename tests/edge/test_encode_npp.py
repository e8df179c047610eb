"""/encode with an exported NPP (the test_tiny artifact, ONNX Runtime on CPU): the NPP runs, the
plain encode is sampled for the bits-saved estimate, operating points outside its training refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from edge.backends import create_backend
from edge.core.config import EdgeSettings
from edge.main import create_app
from shared.codecs import get_codec
from shared.pipeline import EncodePipeline
from tests.edge.conftest import FAST

PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, edge_artifact: Path) -> Iterator[TestClient]:
    settings = EdgeSettings(**{**FAST, "SPOOL_DIR": tmp_path_factory.mktemp("spool"),  # type: ignore[arg-type]
                               "NPP_ARTIFACT": edge_artifact, "NPP_BACKEND": "onnxruntime",
                               "PLAIN_SAMPLE_EVERY": 2})
    with TestClient(create_app(settings)) as c:
        yield c


def _value(c: TestClient, name: str) -> float:
    return float(c.app.state.edge.metrics.registry.get_sample_value(name) or 0.0)  # type: ignore[attr-defined]


def test_npp_runs_by_default_and_a_plain_encode_is_sampled(client: TestClient, small_png: bytes,
                                                           small_frame: np.ndarray, edge_artifact: Path) -> None:
    sizes = []
    for i in range(4):
        r = client.post("/encode", params={"camera_id": "npp-cam", "frame_id": i, "quality": 34, "forward": "false"},
                        content=small_png, headers=PNG)
        assert r.status_code == 200, r.text
        assert r.headers["X-PrepICM-NPP"].startswith("npp-test_tiny-UNTRAINED-")
        sizes.append((int(r.headers["X-PrepICM-Bits"]), r.headers.get("X-PrepICM-Plain-Bits")))
    sampled = [s for s in sizes if s[1] is not None]
    assert len(sampled) == 2  # every 2nd NPP frame
    # the real thing: NPP (same backend) then the same codec, in this process
    npp = create_backend("onnxruntime", edge_artifact, device="cpu")
    pipe = EncodePipeline(get_codec("bpg", level=0))
    expected_npp = pipe.encode(npp.run(small_frame, npp.conditioning_for("bpg", 34)), 34).bits
    expected_plain = pipe.encode(small_frame, 34).bits
    assert all(bits == expected_npp for bits, _ in sizes)
    assert all(int(p) == expected_plain for _, p in sampled)  # type: ignore[arg-type]
    assert _value(client, "prepicm_edge_plain_bits_total") == 2 * expected_plain
    assert _value(client, "prepicm_edge_sampled_bits_total") == 2 * expected_npp
    saved, over = _value(client, "prepicm_edge_bits_saved_total"), _value(client, "prepicm_edge_bits_overspent_total")
    assert saved - over == 2 * (expected_plain - expected_npp)


def test_npp_false_is_the_plain_codec(client: TestClient, small_png: bytes, small_frame: np.ndarray) -> None:
    r = client.post("/encode", params={"camera_id": "npp-cam", "frame_id": 9, "quality": 34, "npp": "false",
                                       "forward": "false"}, content=small_png, headers=PNG)
    assert r.status_code == 200 and r.headers["X-PrepICM-NPP"] == "none"
    assert r.content == EncodePipeline(get_codec("bpg", level=0)).encode(small_frame, 34).bitstream


def test_quality_outside_the_npp_training_is_refused(client: TestClient, small_png: bytes) -> None:
    r = client.post("/encode", params={"camera_id": "npp-cam", "frame_id": 10, "quality": 10, "forward": "false"},
                    content=small_png, headers=PNG)
    assert r.status_code == 422 and r.json()["error"] == "operating_point_unsupported"
    assert client.get("/readyz").json()["npp"].startswith("npp-test_tiny")


def test_rate_control_with_the_npp_searches_its_trained_range(client: TestClient, small_png: bytes) -> None:
    r = client.post("/encode", params={"camera_id": "npp-rc", "frame_id": 1, "target_bpp": 5.0, "forward": "false"},
                    content=small_png, headers=PNG)
    assert r.status_code == 200, r.text
    assert int(r.headers["X-PrepICM-Quality"]) == 25  # the finest QP test_tiny was trained for
