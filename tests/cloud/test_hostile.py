"""Bad input of every kind is a 4xx ErrorBody, never a 5xx, and the cloud stays ready."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from shared.codecs.bpg import container
from shared.pipeline import EncodePipeline
from shared.wire import ErrorBody
from tests.cloud.conftest import AUTH, metric


def _huge_bpg(bitstream: bytes, width: int, height: int) -> bytes:
    """A well-formed BPG file whose header claims ``width``×``height`` (the picture data is the real one's)."""
    parsed = container.parse(bitstream)
    assert isinstance(parsed, container.BpgFile)
    return container.build(replace(parsed.header, width=width, height=height), parsed.sps, parsed.payload)


def _huge_jpeg(width: int, height: int) -> bytes:
    data = bytearray(EncodePipeline("jpeg").encode(np.zeros((16, 16, 3), np.uint8), 80).bitstream)
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


_RNG_BYTES = np.random.default_rng(0).bytes(4096)

#: name → (body from the real bitstream, query, status, error code); status 0: any 4xx
CASES: dict[str, tuple[Callable[[bytes], bytes], dict[str, object], int, str]] = {
    "empty body": (lambda b: b"", {}, 400, "empty_body"),
    "random bytes": (lambda b: _RNG_BYTES, {}, 415, "unsupported_codec"),
    "random bytes named bpg": (lambda b: _RNG_BYTES, {"codec": "bpg"}, 400, "corrupt_stream"),
    "truncated bpg": (lambda b: b[: len(b) // 2], {}, 400, "corrupt_stream"),
    "bpg header only": (lambda b: b[:12], {}, 400, "corrupt_stream"),
    "bpg over MAX_PIXELS": (lambda b: _huge_bpg(b, 4000, 3000), {}, 413, "too_many_pixels"),
    "bpg over the codec limit": (lambda b: _huge_bpg(b, 60000, 60000), {}, 413, "too_many_pixels"),
    "jpeg bomb": (lambda b: _huge_jpeg(30000, 30000), {}, 0, ""),
    "jpeg over MAX_PIXELS": (lambda b: _huge_jpeg(4000, 3000), {}, 413, "too_many_pixels"),
    "bpg sent as jpeg": (lambda b: b, {"codec": "jpeg"}, 400, "corrupt_stream"),
    "unknown codec name": (lambda b: b, {"codec": "h266-magic"}, 400, "unknown_codec"),
    "unknown task": (lambda b: b, {"tasks": "yolov5n,resnet9000"}, 400, "unknown_task"),
    "task not configured here": (lambda b: b, {"tasks": "mobilenet_v2"}, 400, "unknown_task"),
    "negative frame id": (lambda b: b, {"frame_id": -1}, 422, "invalid_parameters"),
    "frame id not a number": (lambda b: b, {"frame_id": "seven"}, 422, "invalid_parameters"),
    "camera id with a slash": (lambda b: b, {"camera_id": "../etc"}, 422, "invalid_parameters"),
    "camera id too long": (lambda b: b, {"camera_id": "c" * 200}, 422, "invalid_parameters"),
    "unknown query parameter": (lambda b: b, {"priority": "high"}, 422, "invalid_parameters"),
    "captured_at negative": (lambda b: b, {"captured_at": -5}, 422, "invalid_parameters"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_4xx_json(client, analyze, bitstream: bytes, case: str) -> None:
    build, query, status, code = CASES[case]
    r = analyze(build(bitstream), **{"frame_id": 1, **query})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    err = ErrorBody.model_validate(r.json())
    if status:
        assert (r.status_code, err.error) == (status, code), r.text
    assert err.message
    assert client.get("/readyz").status_code == 200


def test_missing_query_parameters(client, bitstream: bytes) -> None:
    r = client.post("/analyze", content=bitstream, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameters"
    assert "camera_id" in r.json()["message"]


def test_body_over_the_limit_by_content_length(client, analyze, settings) -> None:
    r = analyze(b"BPG\xfb" + bytes(settings.MAX_BODY_BYTES), frame_id=1)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_body_over_the_limit_streamed_without_length(client, camera: str, settings) -> None:
    """A chunked body has no Content-Length: it is cut off as soon as it grows past the limit."""
    sent = []

    def chunks():
        for _ in range(64):
            sent.append(1)
            yield b"\0" * (64 * 1024)

    params = {"camera_id": camera, "frame_id": 1, "captured_at": 1.0}
    r = client.post("/analyze", params=params, content=chunks(), headers=AUTH)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert client.get("/readyz").status_code == 200


def test_refused_frames_are_counted(client, analyze, camera: str) -> None:
    analyze(b"", frame_id=1)
    analyze(b"\x00" * 100, frame_id=2)
    assert metric(client, "prepicm_cloud_frames_total", outcome="rejected", codec="unknown", camera=camera) == 2
    assert metric(client, "prepicm_cloud_frames_total", outcome="analyzed", codec="bpg", camera=camera) == 0


def test_unknown_routes_and_methods_are_json(client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/analyze", headers=AUTH)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_query_is_checked_before_the_body_is_read(client, analyze, settings) -> None:
    too_big = bytes(settings.MAX_BODY_BYTES + 1)
    assert analyze(too_big, frame_id=1, tasks="nope").json()["error"] == "unknown_task"
    assert analyze(too_big, frame_id=1, codec="nope").json()["error"] == "unknown_codec"
    assert analyze(too_big, frame_id=1).json()["error"] == "body_too_large"
