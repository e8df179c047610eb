"""Two hundred malformed or hostile requests, drawn from a seeded RNG, against the edge's
``POST /encode`` and the cloud's ``/analyze`` and ``/results`` as real processes: every one is a
4xx with an ErrorBody, none a 5xx, nothing is stored, and both services stay ready and keep
working. Then fuzzed (mutated) images and bitstreams: a 200 is allowed there (a flipped bit in
the picture data still decodes), a 5xx or a dead process is not."""

from __future__ import annotations

import io
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from PIL import Image
from pydantic import ValidationError

from shared.wire import EncodeResult, ErrorBody
from tests.cloud.test_hostile import _huge_bpg, _huge_jpeg
from tests.edge.test_frames import huge_png_header
from tests.processes import ServiceProcess, metric
from tests.system.conftest import (
    CAMERA_TOKEN,
    CLOUD_AUTH,
    T0,
    Services,
    db_rows,
    readyz,
    scrape,
    stored_results,
)

N_HOSTILE = 200
N_FUZZ = 40
EDGE_MAX_BODY = 64 * 1024
CLOUD_MAX_BODY = 256 * 1024
CAMERA_AUTH = {"Authorization": f"Bearer {CAMERA_TOKEN}"}


@dataclass
class Call:
    """One request, and what it must get: ``status`` exactly (0: any 4xx) and, if given, ``error``."""

    kind: str
    service: str  # "edge" or "cloud"
    method: str = "POST"
    path: str = ""
    params: dict[str, Any] | None = None
    raw_query: str | None = None  # sent verbatim instead of params
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | Iterator[bytes] | None = None
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    status: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Material:
    png: bytes
    jpeg: bytes
    bpg: bytes


def _jpeg(png: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _word(rng: np.random.Generator, n: int = 8) -> str:
    return "".join(rng.choice(list(string.ascii_lowercase), n))


def _chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:  # a generator body goes out chunked
    for i in range(0, len(data), size):
        yield data[i:i + size]


BAD_CAMERAS = ["", "../etc", "a/b", "c" * 129, "cam id", "kämera", "-lead", ".hidden", "cam\x00x", "cam;drop",
               "%2e%2e", "cam\n", "_x"]
BAD_FRAMES = ["-1", "seven", "1.5", "", "0x10", "1e3", str(10**30), str(2**63), " 1 2", "NaN"]
BAD_TIMES = ["-1", "yesterday", "inf", "-inf", "nan", "1e400"]
#: (method, path) pairs each service has the path but not the method for
WRONG_METHODS = {
    "edge": [(m, "/encode") for m in ("GET", "PUT", "DELETE", "PATCH")]
    + [(m, p) for m in ("POST", "PUT", "DELETE") for p in ("/readyz", "/healthz", "/metrics")],
    "cloud": [(m, "/analyze") for m in ("GET", "PUT", "DELETE", "PATCH")]
    + [(m, p) for m in ("POST", "PUT", "DELETE") for p in ("/results", "/readyz", "/healthz", "/metrics")],
}


def _edge(m: Material, kind: str, rng: np.random.Generator, i: int, **kw: Any) -> Call:
    params = {"camera_id": "hostile-cam", "frame_id": i, "captured_at": T0 + i}
    params.update(kw.pop("params", {}))
    headers = {"content-type": "image/png", **CAMERA_AUTH, **kw.pop("headers", {})}
    return Call(kind, "edge", path="/encode", params=params, headers=headers,
                content=kw.pop("content", m.png), **kw)


def _cloud(m: Material, kind: str, rng: np.random.Generator, i: int, **kw: Any) -> Call:
    params = {"camera_id": "hostile-cam", "frame_id": i, "captured_at": T0 + i}
    params.update(kw.pop("params", {}))
    headers = {"content-type": "application/octet-stream", **CLOUD_AUTH, **kw.pop("headers", {})}
    return Call(kind, "cloud", path="/analyze", params=params, headers=headers,
                content=kw.pop("content", m.bpg), **kw)


def _cut(data: bytes, rng: np.random.Generator, lo: int) -> bytes:
    # strictly inside the picture data: a file cut after its last pixel byte may still be whole
    return data[: int(rng.integers(lo, int(len(data) * 0.85)))]


def _garbage_query(rng: np.random.Generator, i: int) -> str:
    junk = quote(bytes(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8)), safe="")
    forms = [f"camera_id=hostile-cam&frame_id={i}&{junk}=1", f"camera_id=hostile-cam&frame_id={i}&&&==&%zz",
             f"camera_id=hostile-cam&frame_id={i}&={junk}", f"{junk}", f"camera_id={junk}&frame_id={i}",
             f"camera_id=hostile-cam&frame_id={junk}", "&" * int(rng.integers(1, 50))]
    return forms[int(rng.integers(len(forms)))]


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


#: kind → maker(material, rng, request index) → the request
KINDS: dict[str, Callable[[Material, np.random.Generator, int], Call]] = {
    # -- the edge: POST /encode -------------------------------------------------------------------------
    "edge not an image": lambda m, r, i: _edge(
        m, "edge not an image", r, i, content=r.bytes(int(r.integers(1, 5000))),
        headers={"content-type": _pick(r, ["image/png", "image/jpeg", "application/octet-stream"])},
        status=400, error="invalid_image"),
    "edge truncated png": lambda m, r, i: _edge(m, "edge truncated png", r, i, content=_cut(m.png, r, 8),
                                                status=400, error="invalid_image"),
    "edge truncated jpeg": lambda m, r, i: _edge(m, "edge truncated jpeg", r, i, content=_cut(m.jpeg, r, 2),
                                                 headers={"content-type": "image/jpeg"}, status=400,
                                                 error="invalid_image"),
    "edge bpg is no camera image": lambda m, r, i: _edge(m, "edge bpg is no camera image", r, i,
                                                         content=_pick(r, [m.bpg, _cut(m.bpg, r, 4)]),
                                                         status=400, error="invalid_image"),
    "edge huge declared dimensions": lambda m, r, i: _edge(
        m, "edge huge declared dimensions", r, i,
        content=huge_png_header(*_pick(r, [(60000, 60000), (int(r.integers(17000, 60001)), 64),
                                           (2000, int(r.integers(600, 30000)))])),
        status=413, error="image_too_large"),
    "edge unknown codec": lambda m, r, i: _edge(m, "edge unknown codec", r, i, params={"codec": _word(r)},
                                                status=422, error="unknown_codec"),
    "edge quality out of range": lambda m, r, i: _edge(
        m, "edge quality out of range", r, i,
        params={"quality": int(_pick(r, [r.integers(-1000, 0), r.integers(52, 10**6)]))},
        status=422, error="quality_out_of_range"),
    "edge quality not a number": lambda m, r, i: _edge(m, "edge quality not a number", r, i,
                                                       params={"quality": _pick(r, ["abc", "3.5", "", "1e2"])},
                                                       status=422, error="invalid_parameters"),
    "edge target_bpp out of range": lambda m, r, i: _edge(
        m, "edge target_bpp out of range", r, i, params={"target_bpp": _pick(r, ["0", "-1", "65", "nan", "inf"])},
        status=422, error="invalid_parameters"),
    "edge quality and target": lambda m, r, i: _edge(m, "edge quality and target", r, i,
                                                     params={"quality": 30, "target_bpp": 0.5}, status=422,
                                                     error="invalid_parameters"),
    "edge bad camera id": lambda m, r, i: _edge(m, "edge bad camera id", r, i,
                                                params={"camera_id": _pick(r, BAD_CAMERAS)}, status=422,
                                                error="invalid_parameters"),
    "edge bad frame id": lambda m, r, i: _edge(m, "edge bad frame id", r, i,
                                               params={"frame_id": _pick(r, BAD_FRAMES)}, status=422,
                                               error="invalid_parameters"),
    "edge bad capture time": lambda m, r, i: _edge(m, "edge bad capture time", r, i,
                                                   params={"captured_at": _pick(r, BAD_TIMES)}, status=422,
                                                   error="invalid_parameters"),
    "edge missing ids": lambda m, r, i: Call("edge missing ids", "edge", path="/encode",
                                             params=_pick(r, [{}, {"camera_id": "hostile-cam"}, {"frame_id": i}]),
                                             headers={"content-type": "image/png", **CAMERA_AUTH}, content=m.png,
                                             status=422, error="invalid_parameters"),
    "edge unknown parameter": lambda m, r, i: _edge(m, "edge unknown parameter", r, i, params={_word(r): "1"},
                                                    status=422, error="invalid_parameters"),
    "edge bad booleans": lambda m, r, i: _edge(m, "edge bad booleans", r, i,
                                               params={_pick(r, ["npp", "forward"]): _pick(r, ["maybe", "2", ""])},
                                               status=422, error="invalid_parameters"),
    "edge npp without artifact": lambda m, r, i: _edge(m, "edge npp without artifact", r, i,
                                                       params={"npp": "true"}, status=422,
                                                       error="npp_not_configured"),
    "edge tasks too long": lambda m, r, i: _edge(m, "edge tasks too long", r, i,
                                                 params={"tasks": "x," * int(r.integers(257, 2000))}, status=422,
                                                 error="invalid_parameters"),
    "edge body over the limit": lambda m, r, i: _edge(
        m, "edge body over the limit", r, i,
        content=b"\x89PNG" + bytes(EDGE_MAX_BODY + int(r.integers(0, EDGE_MAX_BODY))), status=413,
        error="body_too_large"),
    "edge chunked body over the limit": lambda m, r, i: _edge(
        m, "edge chunked body over the limit", r, i, content=_chunks(b"\x89PNG" + bytes(2 * EDGE_MAX_BODY)),
        status=413, error="body_too_large"),
    "edge wrong media type": lambda m, r, i: _edge(
        m, "edge wrong media type", r, i,
        headers={"content-type": _pick(r, ["application/json", "text/plain", "video/mp4", "x/y"])}, status=415,
        error="unsupported_media_type"),
    "edge multipart without frame": lambda m, r, i: Call(
        "edge multipart without frame", "edge", path="/encode", headers=dict(CAMERA_AUTH),
        params={"camera_id": "hostile-cam", "frame_id": i}, files={"other": ("a.png", m.png, "image/png")},
        status=422, error="invalid_parameters"),
    "edge multipart too many fields": lambda m, r, i: Call(
        "edge multipart too many fields", "edge", path="/encode", headers=dict(CAMERA_AUTH),
        data={f"f{k}": "1" for k in range(40)}, files={"frame": ("f.png", m.png, "image/png")}, status=400),
    "edge wrong token": lambda m, r, i: _edge(
        m, "edge wrong token", r, i,
        headers={"Authorization": _pick(r, ["Bearer nope", f"Bearer {CAMERA_TOKEN}x", f"Basic {CAMERA_TOKEN}",
                                            "Bearer", "", CAMERA_TOKEN])},
        status=401, error="unauthorized"),
    "edge no token": lambda m, r, i: Call("edge no token", "edge", path="/encode",
                                          params={"camera_id": "hostile-cam", "frame_id": i},
                                          headers={"content-type": "image/png"}, content=m.png, status=401,
                                          error="unauthorized"),
    "edge wrong method": lambda m, r, i: Call("edge wrong method", "edge", *_pick(r, WRONG_METHODS["edge"]),
                                              status=405, error="method_not_allowed"),
    "edge unknown route": lambda m, r, i: Call("edge unknown route", "edge", method=_pick(r, ["GET", "POST"]),
                                               path=_pick(r, ["/admin", "/encode/1", "/analyze", "/%00",
                                                              f"/{_word(r)}", "/encode/../etc/passwd"]),
                                               headers=dict(CAMERA_AUTH), status=404, error="not_found"),
    "edge garbage query": lambda m, r, i: Call("edge garbage query", "edge", path="/encode",
                                               raw_query=_garbage_query(r, i),
                                               headers={"content-type": "image/png", **CAMERA_AUTH}, content=m.png,
                                               status=422, error="invalid_parameters"),
    # -- the cloud: POST /analyze, GET /results -------------------------------------------------------------
    "cloud empty body": lambda m, r, i: _cloud(m, "cloud empty body", r, i, content=b"", status=400,
                                               error="empty_body"),
    "cloud random bytes": lambda m, r, i: _cloud(m, "cloud random bytes", r, i,
                                                 content=b"\x00" + r.bytes(int(r.integers(1, 4000))), status=415,
                                                 error="unsupported_codec"),
    "cloud random bytes named bpg": lambda m, r, i: _cloud(
        m, "cloud random bytes named bpg", r, i, content=b"\x00" + r.bytes(int(r.integers(1, 4000))),
        params={"codec": "bpg"}, status=400, error="corrupt_stream"),
    "cloud truncated bpg": lambda m, r, i: _cloud(m, "cloud truncated bpg", r, i, content=_cut(m.bpg, r, 4),
                                                  status=400, error="corrupt_stream"),
    "cloud truncated jpeg": lambda m, r, i: _cloud(m, "cloud truncated jpeg", r, i, content=_cut(m.jpeg, r, 3)),
    "cloud huge bpg header": lambda m, r, i: _cloud(
        m, "cloud huge bpg header", r, i,
        content=_huge_bpg(m.bpg, *_pick(r, [(60000, 60000), (4000, 3000), (int(r.integers(2001, 60000)), 2000)])),
        status=413, error="too_many_pixels"),
    "cloud huge jpeg header": lambda m, r, i: _cloud(m, "cloud huge jpeg header", r, i,
                                                     content=_huge_jpeg(*_pick(r, [(60000, 60000), (4000, 3000)]))),
    "cloud png is no bitstream": lambda m, r, i: _cloud(m, "cloud png is no bitstream", r, i, content=m.png,
                                                        status=415, error="unsupported_codec"),
    "cloud unknown codec": lambda m, r, i: _cloud(m, "cloud unknown codec", r, i, params={"codec": _word(r)},
                                                  status=400, error="unknown_codec"),
    "cloud unknown task": lambda m, r, i: _cloud(m, "cloud unknown task", r, i,
                                                 params={"tasks": _pick(r, [_word(r), "yolov5n",
                                                                            "efficientnet_lite0,nope"])},
                                                 status=400, error="unknown_task"),
    "cloud bad metadata": lambda m, r, i: _cloud(m, "cloud bad metadata", r, i,
                                                 params=_pick(r, [{"quality": "abc"}, {"plain_bits": "-1"},
                                                                  {"npp": ["a", "b"]}, {"quality": "1.5"}]),
                                                 status=422, error="invalid_parameters"),
    "cloud bad camera id": lambda m, r, i: _cloud(m, "cloud bad camera id", r, i,
                                                  params={"camera_id": _pick(r, BAD_CAMERAS)}, status=422,
                                                  error="invalid_parameters"),
    "cloud bad frame id": lambda m, r, i: _cloud(m, "cloud bad frame id", r, i,
                                                 params={"frame_id": _pick(r, BAD_FRAMES)}, status=422,
                                                 error="invalid_parameters"),
    "cloud bad capture time": lambda m, r, i: _cloud(m, "cloud bad capture time", r, i,
                                                     params={"captured_at": _pick(r, BAD_TIMES)}, status=422,
                                                     error="invalid_parameters"),
    "cloud unknown parameter": lambda m, r, i: _cloud(m, "cloud unknown parameter", r, i, params={_word(r): "x"},
                                                      status=422, error="invalid_parameters"),
    "cloud body over the limit": lambda m, r, i: _cloud(
        m, "cloud body over the limit", r, i,
        content=b"BPG\xfb" + bytes(CLOUD_MAX_BODY + int(r.integers(0, CLOUD_MAX_BODY))), status=413,
        error="body_too_large"),
    "cloud chunked body over the limit": lambda m, r, i: _cloud(
        m, "cloud chunked body over the limit", r, i, content=_chunks(b"BPG\xfb" + bytes(CLOUD_MAX_BODY + 1)),
        status=413, error="body_too_large"),
    "cloud wrong token": lambda m, r, i: _cloud(
        m, "cloud wrong token", r, i,
        headers={"Authorization": _pick(r, ["Bearer nope", CLOUD_AUTH["Authorization"] + "x", "Bearer ",
                                            CLOUD_AUTH["Authorization"].replace("Bearer", "Basic"), ""])},
        status=401, error="unauthorized"),
    "cloud no token": lambda m, r, i: Call("cloud no token", "cloud", method=_pick(r, ["POST", "GET"]),
                                           path="/analyze", params={"camera_id": "hostile-cam", "frame_id": i,
                                                                    "captured_at": T0},
                                           content=m.bpg, status=0),  # GET: 405 before the token is looked at
    "cloud results without token": lambda m, r, i: Call("cloud results without token", "cloud", method="GET",
                                                        path="/results", params={"camera_id": "hostile-cam"},
                                                        status=401, error="unauthorized"),
    "cloud results bad query": lambda m, r, i: Call(
        "cloud results bad query", "cloud", method="GET", path="/results", headers=dict(CLOUD_AUTH),
        params=_pick(r, [{"limit": "0"}, {"limit": "5000"}, {"limit": "x"}, {"since": "yesterday"},
                         {"camera_id": "../etc"}, {_word(r): "1"}]), status=422, error="invalid_parameters"),
    "cloud wrong method": lambda m, r, i: Call("cloud wrong method", "cloud", *_pick(r, WRONG_METHODS["cloud"]),
                                               headers=dict(CLOUD_AUTH), status=405, error="method_not_allowed"),
    "cloud unknown route": lambda m, r, i: Call("cloud unknown route", "cloud", method=_pick(r, ["GET", "POST"]),
                                                path=_pick(r, ["/encode", "/analyze/1", "/results/1", "/%ff",
                                                               f"/{_word(r)}", "/admin"]),
                                                headers=dict(CLOUD_AUTH), status=404, error="not_found"),
    "cloud garbage query": lambda m, r, i: Call("cloud garbage query", "cloud", path="/analyze",
                                                raw_query=_garbage_query(r, i),
                                                headers={"content-type": "application/octet-stream", **CLOUD_AUTH},
                                                content=m.bpg, status=422, error="invalid_parameters"),
}


def hostile_calls(m: Material, seed: int = 20240611, n: int = N_HOSTILE) -> list[Call]:
    """Every kind at least once, the rest drawn at random; the order shuffled."""
    rng = np.random.default_rng(seed)
    kinds = list(KINDS)
    kinds += [_pick(rng, list(KINDS)) for _ in range(n - len(kinds))]
    rng.shuffle(kinds)
    return [KINDS[k](m, rng, i) for i, k in enumerate(kinds)]


def every_bad_id(m: Material) -> list[Call]:
    """Each listed bad frame id and capture time once per service: the ones that once reached the
    database (a 500 there, and a frame the edge spooled and retried forever) must not hide behind
    the random draw."""
    rng = np.random.default_rng(0)
    out = []
    for service in (_edge, _cloud):
        for j, v in enumerate(BAD_FRAMES):
            out.append(service(m, "every bad frame id", rng, 20_000 + j, params={"frame_id": v}, status=422,
                               error="invalid_parameters"))
        for j, v in enumerate(BAD_TIMES):
            out.append(service(m, "every bad capture time", rng, 20_100 + j, params={"captured_at": v},
                               status=422, error="invalid_parameters"))
    return out


def _mutate(data: bytes, rng: np.random.Generator, keep: int) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 8))):
        b[int(rng.integers(keep, len(b)))] = int(rng.integers(0, 256))
    return bytes(b)


def fuzz_calls(m: Material, seed: int = 7, n: int = N_FUZZ) -> list[Call]:
    """Images and bitstreams with a few bytes changed anywhere past their signature."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 2:
            out.append(_cloud(m, "cloud fuzzed bpg", rng, 10_000 + i, content=_mutate(m.bpg, rng, 4)))
        else:
            src, media = _pick(rng, [(m.png, "image/png"), (m.jpeg, "image/jpeg")])
            out.append(_edge(m, "edge fuzzed image", rng, 10_000 + i, content=_mutate(src, rng, 4),
                             headers={"content-type": media}, params={"forward": "false"}))
    return out


def send(call: Call, edge: ServiceProcess, cloud: ServiceProcess) -> httpx.Response:
    base = edge.url if call.service == "edge" else cloud.url
    url = f"{base}{call.path}" + (f"?{call.raw_query}" if call.raw_query is not None else "")
    with httpx.Client(timeout=60) as http:
        return http.request(call.method, url, params=call.params if call.raw_query is None else None,
                            headers=call.headers, content=call.content, files=call.files, data=call.data)


def _problem(call: Call, r: httpx.Response, allow_ok: bool = False) -> str | None:
    """None if the answer is what ``call`` must get, else a line saying what went wrong."""
    where = f"{call.kind}: {call.method} {call.path} {call.params or call.raw_query!r}"
    if allow_ok and r.status_code == 200:
        return None
    if not 400 <= r.status_code < 500:
        return f"{where} → {r.status_code} {r.text[:200]}"
    try:
        body = ErrorBody.model_validate(r.json())
    except (ValueError, ValidationError):
        return f"{where} → {r.status_code} without an ErrorBody: {r.text[:200]}"
    if call.status and r.status_code != call.status:
        return f"{where} → {r.status_code} {body.error}, expected {call.status}"
    if call.error and body.error != call.error:
        return f"{where} → {body.error}, expected {call.error}"
    if not body.message:
        return f"{where} → an ErrorBody without a message"
    return None


def test_hostile_requests_are_4xx_errorbodies_and_both_services_keep_working(
        services: Services, frames: list[bytes]) -> None:
    cloud = services.cloud(MAX_BODY_BYTES=CLOUD_MAX_BODY)
    edge = services.edge(cloud.url, CAMERA_TOKEN=CAMERA_TOKEN, MAX_BODY_BYTES=EDGE_MAX_BODY, MAX_PIXELS=1_000_000)
    services.start(cloud, edge)
    r = httpx.post(
        f"{edge.url}/encode", params={"camera_id": "setup-cam", "frame_id": 0, "forward": "false"},
        content=frames[0], headers={"content-type": "image/png", **CAMERA_AUTH}, timeout=60)
    assert r.status_code == 200, r.text
    material = Material(png=frames[0], jpeg=_jpeg(frames[0]), bpg=r.content)

    calls = hostile_calls(material)
    assert len(calls) == N_HOSTILE and {c.kind for c in calls} == set(KINDS)
    calls += every_bad_id(material)
    problems = [p for c in calls if (p := _problem(c, send(c, edge, cloud))) is not None]
    fuzz = fuzz_calls(material)
    fuzz_answers = [send(c, edge, cloud) for c in fuzz]
    problems += [p for c, a in zip(fuzz, fuzz_answers, strict=True) if (p := _problem(c, a, allow_ok=True))]
    assert not problems, f"{len(problems)} of {len(calls) + len(fuzz)} requests answered wrongly:\n" + \
        "\n".join(problems)

    # both alive and ready, nothing failed, nothing stored for the hostile camera
    for svc in (edge, cloud):
        assert svc.running and readyz(svc).status_code == 200, svc.module
    e, c = scrape(edge), scrape(cloud)
    assert metric(e, "prepicm_edge_frames_total", outcome="failed") == 0
    assert metric(e, "prepicm_edge_frames_total", outcome="delivered") == 0
    assert metric(e, "prepicm_edge_spool_frames") == 0
    assert metric(c, "prepicm_cloud_frames_total", outcome="failed") == 0
    fuzzed_ok = sum(a.status_code == 200 for c_, a in zip(fuzz, fuzz_answers, strict=True) if c_.service == "cloud")
    assert metric(c, "prepicm_cloud_frames_total", outcome="analyzed") == fuzzed_ok
    assert len(db_rows(services.tmp / "cloud" / "results.db", "hostile-cam")) == fuzzed_ok

    # and a good frame still flows end to end; a wrong token is still refused
    good = httpx.post(f"{edge.url}/encode", params={"camera_id": "after-cam", "frame_id": 1, "captured_at": T0},
                      content=frames[1], headers={"content-type": "image/png", **CAMERA_AUTH}, timeout=60)
    assert good.status_code == 200, good.text
    res = EncodeResult.model_validate(good.json())
    assert res.delivered and res.cloud is not None and res.cloud.results[0].task == "efficientnet_lite0"
    assert [x.frame_id for x in stored_results(cloud, "after-cam")] == [1]
    wrong_edge = httpx.post(f"{edge.url}/encode", params={"camera_id": "after-cam", "frame_id": 2},
                            content=frames[1], headers={"content-type": "image/png", "Authorization": "Bearer no"})
    wrong_cloud = httpx.post(f"{cloud.url}/analyze", params={"camera_id": "after-cam", "frame_id": 2,
                                                             "captured_at": T0},
                             content=material.bpg, headers={"Authorization": "Bearer no"})
    for w in (wrong_edge, wrong_cloud):
        assert w.status_code == 401 and ErrorBody.model_validate(w.json()).error == "unauthorized"
