"""A TEST RECEIVER for the edge's uplink: a real HTTP server (uvicorn, in a thread, on loopback)
that accepts ``POST /analyze`` like the cloud's wire contract says, records every request, and
answers a real :class:`shared.wire.AnalyzeResult` for the decoded bitstream (no task models run).

It is not the product's cloud service (cloud/ is tested with its own suite; edge + cloud
together are an integration test of their own). Edge tests use it to see exactly what the edge
sent, and to make "the cloud" go down, answer 5xx or 4xx, and come back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.pipeline import decode
from shared.wire import ANALYZE_PATH, AnalyzeParams, AnalyzeResult, ErrorBody
from tests.processes import free_port


@dataclass
class Received:
    params: AnalyzeParams
    body: bytes
    authorization: str | None
    content_type: str | None


@dataclass
class TestReceiver:
    """``start()`` / ``stop()`` it to bring "the cloud" up and down on the same port;
    ``fail_next(n, status)`` answers the next n requests with that status (5xx: retried by the
    edge, 4xx: not)."""

    __test__ = False  # not a pytest class

    port: int = field(default_factory=free_port)
    token: str | None = None
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    _failures: list[int] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int, status: int) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    async def _analyze(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self._lock:
            self.attempts += 1
            status = self._failures.pop(0) if self._failures else None
        if status is not None:
            return JSONResponse(ErrorBody(error="test_failure", message=f"told to answer {status}").model_dump(),
                                status_code=status)
        auth = request.headers.get("authorization")
        if self.token is not None and auth != f"Bearer {self.token}":
            return JSONResponse(ErrorBody(error="unauthorized", message="bad token").model_dump(), status_code=401)
        params = AnalyzeParams.model_validate(dict(request.query_params))
        dec = decode(body, params.codec)
        with self._lock:
            self.received.append(Received(params, body, auth, request.headers.get("content-type")))
        h, w = dec.image.shape[:2]
        result = AnalyzeResult(camera_id=params.camera_id, frame_id=params.frame_id, captured_at=params.captured_at,
                               codec=dec.codec, width=w, height=h, bits=len(body) * 8, bpp=len(body) * 8 / (w * h),
                               npp=params.npp, quality=params.quality, plain_bits=params.plain_bits,
                               decoder_id=dec.decoder_id, results=[], timings_s=dec.timings_s,
                               received_at=time.time())
        return JSONResponse(result.model_dump())

    def start(self) -> TestReceiver:
        app = Starlette(routes=[Route(ANALYZE_PATH, self._analyze, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"test-receiver-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"test receiver did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def wait_for(self, n: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"test receiver got {len(self.received)} of {n} frames in {timeout} s")
            time.sleep(0.02)
        return list(self.received)


class ThreadedServer:
    """Any ASGI app under a real uvicorn on loopback, in a thread (lifespan on): ``with
    ThreadedServer(app) as url: …``. Used to serve the edge app itself to clients that need a
    real socket (the camera simulator)."""

    def __init__(self, app: object, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,  # type: ignore[arg-type]
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"test-server-{self.port}")

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server did not start on port {self.port}")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
