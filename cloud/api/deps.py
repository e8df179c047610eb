"""What routes get injected: the app's state and its parts, the bearer token check and the
bounded body reader (``Annotated`` aliases keep route signatures to one line)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from cloud.analysis import Analyzer
from cloud.core.config import CloudSettings
from cloud.errors import BodyTooLargeError, NotReadyError, ParameterError, UnauthorizedError
from cloud.metrics import CloudMetrics
from cloud.state import CloudState
from cloud.store import ResultStore
from shared.wire import AUTH_HEADER


def get_state(request: Request) -> CloudState:
    state = getattr(request.app.state, "cloud", None)
    if state is None:
        raise NotReadyError("the cloud is starting or stopping")
    return state


State = Annotated[CloudState, Depends(get_state)]


def get_settings(request: Request) -> CloudSettings:
    return request.app.state.settings


def get_metrics(request: Request) -> CloudMetrics:
    return request.app.state.metrics


def get_store(state: State) -> ResultStore:
    return state.store


def get_analyzer(state: State) -> Analyzer:
    return state.analyzer


Settings = Annotated[CloudSettings, Depends(get_settings)]
Metrics = Annotated[CloudMetrics, Depends(get_metrics)]
Store = Annotated[ResultStore, Depends(get_store)]
AnalyzerDep = Annotated[Analyzer, Depends(get_analyzer)]


def require_token(request: Request, settings: Settings) -> None:
    """``Authorization: Bearer <TOKEN>``, compared in constant time; without a TOKEN (DEV) open."""
    token = settings.token
    if token is None:
        return
    scheme, _, value = request.headers.get(AUTH_HEADER, "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise UnauthorizedError("this cloud needs 'Authorization: Bearer <token>' with its shared token")


Auth = Annotated[None, Depends(require_token)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused before reading when Content-Length says it is too large and
    cut off as soon as a body without one (chunked) grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ParameterError(f"bad Content-Length {declared!r}")
        if int(declared) > limit:
            raise BodyTooLargeError(f"the body is {int(declared)} bytes; this cloud accepts at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the body exceeds this cloud's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
