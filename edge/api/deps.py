"""What routes get injected: the app's state and its parts, the camera token check and the
bounded upload reader (``Annotated`` aliases keep route signatures to one line)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from edge.errors import BodyTooLargeError, ParameterError, UnauthorizedError, UnsupportedMediaError
from edge.metrics import EdgeMetrics
from edge.service import EdgeService
from edge.state import EdgeState
from shared.wire import AUTH_HEADER

#: raw bodies accepted besides image/*; anything else that is not multipart is refused (415)
RAW_TYPES = ("application/octet-stream", "")


def get_state(request: Request) -> EdgeState:
    state: EdgeState = request.app.state.edge
    return state


State = Annotated[EdgeState, Depends(get_state)]


def get_service(state: State) -> EdgeService:
    return state.service


def get_metrics(state: State) -> EdgeMetrics:
    return state.metrics


Service = Annotated[EdgeService, Depends(get_service)]
Metrics = Annotated[EdgeMetrics, Depends(get_metrics)]


def require_camera(request: Request, state: State) -> None:
    """With ``CAMERA_TOKEN`` set, cameras must send ``Authorization: Bearer <token>``."""
    token = state.settings.CAMERA_TOKEN
    if token is None:
        return
    scheme, _, value = request.headers.get(AUTH_HEADER, "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.get_secret_value().encode()):
        raise UnauthorizedError("this edge needs 'Authorization: Bearer <camera token>'")


CameraAuth = Annotated[None, Depends(require_camera)]


@dataclass(frozen=True)
class Upload:
    """A frame's bytes and the parameters that came with it (query, then form fields)."""

    data: bytes
    params: dict[str, str]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused before reading when Content-Length says it is too large and
    cut off as soon as a body without one (chunked) grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ParameterError(f"bad Content-Length {declared!r}")
        if int(declared) > limit:
            raise BodyTooLargeError(f"the body is {int(declared)} bytes; this edge accepts at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the body exceeds this edge's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, limit: int) -> Upload:
    """A multipart form with a file field ``frame`` (other fields are parameters) or a raw body."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data" and not media.startswith("image/") and media not in RAW_TYPES:
        raise UnsupportedMediaError(f"send the frame as multipart/form-data (field 'frame') or as a raw "
                                    f"image/* body, not {media!r}")
    body = await read_body(request, limit)
    params = dict(request.query_params)
    if media != "multipart/form-data":
        return Upload(body, params)

    async def replay() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=16, max_part_size=64 * 1024)
    try:
        frame = form.get("frame")
        if not isinstance(frame, UploadFile):
            raise ParameterError("the multipart form has no file field 'frame'")
        data = await frame.read()
        params.update({k: v for k, v in form.multi_items() if isinstance(v, str)})
    finally:
        await form.close()
    return Upload(data, params)
