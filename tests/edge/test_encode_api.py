"""POST /encode through the real app (TestClient runs the lifespan: encoder process, spool, uplink)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from edge.core.config import EdgeSettings
from edge.main import create_app
from shared.codecs import get_codec
from shared.pipeline import EncodePipeline, decode
from shared.wire import ErrorBody
from tests.edge.conftest import FAST
from tests.edge.test_frames import huge_png_header

TOKEN = "camera-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = EdgeSettings(**{**FAST, "SPOOL_DIR": tmp_path_factory.mktemp("spool"),  # type: ignore[arg-type]
                               "CLOUD_URL": "http://127.0.0.1:9", "CAMERA_TOKEN": TOKEN, "MAX_BODY_BYTES": 200_000,
                               "BANDWIDTH_BUDGETS": {"budget-cam": {"bits_per_second": 8000, "fps": 2}}})
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


def _value(client: TestClient, name: str, **labels: str) -> float:
    v = client.app.state.edge.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return 0.0 if v is None else float(v)


def test_forward_false_returns_a_real_bpg_of_the_frame(client: TestClient, small_png: bytes,
                                                       small_frame: np.ndarray) -> None:
    before = _value(client, "prepicm_edge_frames_total", outcome="encoded", codec="bpg", camera="cam-a")
    r = client.post("/encode", params={"camera_id": "cam-a", "frame_id": 1, "forward": "false"}, content=small_png,
                    headers=PNG)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content[:4] == b"BPG\xfb"
    assert int(r.headers["X-PrepICM-Bits"]) == len(r.content) * 8
    assert int(r.headers["X-PrepICM-Quality"]) == 32 and r.headers["X-PrepICM-NPP"] == "none"
    dec = decode(r.content)
    assert dec.codec == "bpg" and dec.image.shape == small_frame.shape
    assert np.abs(dec.image.astype(int) - small_frame).mean() < 12  # it is this frame, coded at QP 32
    # the same bytes an in-process encode with the same settings gives (deterministic codec)
    assert r.content == EncodePipeline(get_codec("bpg", level=0)).encode(small_frame, 32).bitstream
    assert _value(client, "prepicm_edge_frames_total", outcome="encoded", codec="bpg", camera="cam-a") == before + 1
    assert _value(client, "prepicm_edge_frame_bits_count", camera="cam-a") >= 1


def test_multipart_with_form_fields(client: TestClient, small_png: bytes, small_frame: np.ndarray) -> None:
    r = client.post("/encode", files={"frame": ("f.png", small_png, "image/png")},
                    data={"camera_id": "cam-a", "frame_id": "2", "codec": "jpeg", "quality": "80", "forward": "false"})
    assert r.status_code == 200, r.text
    assert r.headers["X-PrepICM-Codec"] == "jpeg" and r.headers["X-PrepICM-Quality"] == "80"
    assert decode(r.content).image.shape == small_frame.shape


@pytest.mark.parametrize("target", [0.3, 1.0])
def test_target_bpp_lands_within_tolerance(client: TestClient, small_png: bytes, small_frame: np.ndarray,
                                           target: float) -> None:
    r = client.post("/encode", params={"camera_id": f"rc-{target}", "frame_id": 1, "target_bpp": target,
                                       "forward": "false"}, content=small_png, headers=PNG)
    assert r.status_code == 200, r.text
    bpp = int(r.headers["X-PrepICM-Bits"]) / small_frame.shape[0] / small_frame.shape[1]
    assert float(r.headers["X-PrepICM-BPP"]) == pytest.approx(bpp, abs=1e-6)
    assert 1 <= int(r.headers["X-PrepICM-RC-Encodes"]) <= 4
    pipe = EncodePipeline(get_codec("bpg", level=0))
    best = min(abs(math.log(pipe.encode(small_frame, q).bpp / target)) for q in range(0, 52))
    # as close as the best integer QP, or inside the ±5 % the search stops at
    assert abs(math.log(bpp / target)) <= max(best, math.log(1.05)) + 1e-9
    assert abs(bpp / target - 1) < 0.15


def test_camera_budget_sets_the_rate(client: TestClient, small_png: bytes) -> None:
    bits = []
    for i in range(4):
        r = client.post("/encode", params={"camera_id": "budget-cam", "frame_id": i, "forward": "false"},
                        content=small_png, headers=PNG)
        assert r.status_code == 200, r.text
        assert int(r.headers["X-PrepICM-RC-Encodes"]) >= 1
        bits.append(int(r.headers["X-PrepICM-Bits"]))
    assert all(abs(b / 4000 - 1) < 0.2 for b in bits), bits  # 8 kbit/s at 2 fps: 4 kbit per frame
    assert abs(sum(bits) / (4 * 4000) - 1) < 0.1, bits
    other = client.post("/encode", params={"camera_id": "other-cam", "frame_id": 1, "forward": "false"},
                        content=small_png, headers=PNG)
    assert other.headers["X-PrepICM-Quality"] == "32" and "X-PrepICM-RC-Encodes" not in other.headers


def _chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


HOSTILE = {
    "not_an_image": (dict(content=b"definitely not an image", headers=PNG), 400, "invalid_image"),
    "truncated_png": ("truncated", 400, "invalid_image"),
    "huge_dimensions": (dict(content=huge_png_header(30_000, 16_000), headers=PNG), 413, "image_too_large"),
    "unknown_codec": ("codec=nope", 422, "unknown_codec"),
    "quality_out_of_range": ("quality=99", 422, "quality_out_of_range"),
    "negative_quality": ("quality=-1", 422, "quality_out_of_range"),
    "quality_and_target": ("quality=30&target_bpp=0.5", 422, "invalid_parameters"),
    "bad_camera_id": ("camera_id=../etc", 422, "invalid_parameters"),
    "unknown_parameter": ("colour=red", 422, "invalid_parameters"),
    "body_too_large": (dict(content=b"\x89PNG" + b"\0" * 300_000, headers=PNG), 413, "body_too_large"),
    "chunked_body_too_large": ("chunked", 413, "body_too_large"),
    "wrong_media_type": (dict(content=b"{}", headers={"content-type": "application/json"}), 415,
                         "unsupported_media_type"),
    "multipart_without_frame": (dict(data={"x": "1"}, files={"other": ("a", b"abc", "image/png")}), 422,
                                "invalid_parameters"),
    "multipart_too_many_fields": (dict(data={f"f{i}": "1" for i in range(40)},
                                       files={"frame": ("f.png", b"x", "image/png")}), 400, "invalid_request"),
    "npp_without_artifact": ("npp=true", 422, "npp_not_configured"),
    "wrong_camera_token": (dict(headers={**PNG, "Authorization": "Bearer nope"}), 401, "unauthorized"),
    "no_camera_token": (dict(headers={**PNG, "Authorization": ""}), 401, "unauthorized"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_a_4xx_json_and_the_edge_stays_ready(client: TestClient, small_png: bytes,
                                                                case: str) -> None:
    spec, status, code = HOSTILE[case]
    params = {"camera_id": "cam-h", "frame_id": "5", "forward": "false"}
    kwargs: dict[str, object] = {"content": small_png, "headers": PNG}
    if spec == "truncated":
        kwargs["content"] = small_png[: len(small_png) // 3]
    elif spec == "chunked":
        kwargs = {"content": _chunks(b"\x89PNG" + b"\0" * 300_000), "headers": PNG}  # no Content-Length
    elif isinstance(spec, str):
        params.update(dict(kv.split("=") for kv in spec.split("&")))
    elif "files" in spec:
        kwargs = dict(spec)
    else:
        kwargs.update(spec)
    r = client.post("/encode", params=params, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    body = ErrorBody.model_validate(r.json())
    assert body.error == code and body.message
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_refused_frames_are_counted(client: TestClient) -> None:
    before = _value(client, "prepicm_edge_frames_total", outcome="invalid", codec="bpg", camera="cam-m")
    r = client.post("/encode", params={"camera_id": "cam-m", "frame_id": 1}, content=b"junk", headers=PNG)
    assert r.status_code == 400
    assert _value(client, "prepicm_edge_frames_total", outcome="invalid", codec="bpg", camera="cam-m") == before + 1


def test_health_docs_metrics_and_unknown_paths(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "multipart/form-data" in spec["paths"]["/encode"]["post"]["requestBody"]["content"]
    text = client.get("/metrics").text
    for name in ("prepicm_edge_frames_total", "prepicm_edge_frame_bits_bucket", "prepicm_edge_frame_bpp_bucket",
                 'prepicm_edge_stage_seconds_bucket{le="0.001",stage="npp"}', "prepicm_edge_spool_frames",
                 "prepicm_edge_spool_dropped_total", "prepicm_edge_bits_saved_total", "prepicm_edge_plain_bits_total"):
        assert name in text
    r = client.get("/nope")
    assert r.status_code == 404 and ErrorBody.model_validate(r.json()).error == "not_found"
    assert client.get("/encode").status_code == 405


def test_beyond_max_in_flight_is_503_busy_before_reading(edge_settings, small_png: bytes) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    import httpx

    from tests.edge.receiver import ThreadedServer

    app = create_app(edge_settings(MAX_IN_FLIGHT=1))
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield small_png[:100]
        release.wait(30)  # the first frame holds the only place while its body trickles in
        yield small_png[100:]

    with ThreadedServer(app) as url:
        params = {"camera_id": "busy-cam", "frame_id": 1, "forward": "false"}
        first: dict[str, httpx.Response] = {}
        t = threading.Thread(target=lambda: first.setdefault("r", httpx.post(
            f"{url}/encode", params=params, content=slow_body(), headers=PNG, timeout=60)))
        t.start()
        deadline = time.monotonic() + 30
        while app.state.edge.service.in_flight < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second = httpx.post(f"{url}/encode", params={**params, "frame_id": 2}, content=small_png, headers=PNG,
                            timeout=30)
        release.set()
        t.join(60)
        assert second.status_code == 503 and second.json()["error"] == "busy" and second.headers["retry-after"] == "1"
        assert first["r"].status_code == 200 and first["r"].content[:4] == b"BPG\xfb"
        assert app.state.edge.service.in_flight == 0
