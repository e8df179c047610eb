"""The one place where library and request errors become HTTP answers (a :class:`shared.wire.ErrorBody`).

Every 4xx/5xx the cloud sends is ``{"error": <code>, "message": <one sentence>}``. Bad input is
always a 4xx; a 5xx means the cloud itself failed (the edge keeps such frames and retries them).
Routes and the service raise typed exceptions; they never build error responses themselves.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.batcher import BatcherClosedError
from shared.codecs.errors import (
    CodecError,
    CodecUnavailableError,
    CorruptStreamError,
    InvalidImageError,
    InvalidQualityError,
    StreamTooLargeError,
    UnsupportedFeatureError,
)
from shared.service_errors import ErrorTable, ServiceError, error_response, lookup, validation_message
from shared.wire import ANALYZE_PATH

log = logging.getLogger("cloud")


class CloudError(ServiceError):
    """An error of the cloud service with its HTTP status and machine-readable code."""


class UnauthorizedError(CloudError):
    status, code = 401, "unauthorized"


class BodyTooLargeError(CloudError):
    status, code = 413, "body_too_large"


class TooManyPixelsError(CloudError):
    """The bitstream's header declares more pixels than this cloud decodes."""

    status, code = 413, "too_many_pixels"


class EmptyBodyError(CloudError):
    status, code = 400, "empty_body"


class UnknownCodecError(CloudError):
    status, code = 400, "unknown_codec"


class UnknownTaskError(CloudError):
    status, code = 400, "unknown_task"


class ParameterError(CloudError):
    status, code = 422, "invalid_parameters"


class OverloadedError(CloudError):
    status, code = 503, "overloaded"


class NotReadyError(CloudError):
    status, code = 503, "not_ready"


#: library errors a request can cause → (status, code); the first matching class wins
_LIBRARY: ErrorTable = (
    (StreamTooLargeError, 413, "too_many_pixels"),
    (CorruptStreamError, 400, "corrupt_stream"),
    (UnsupportedFeatureError, 415, "unsupported_feature"),
    (CodecUnavailableError, 415, "unsupported_codec"),  # also: a signature no codec knows
    (InvalidImageError, 400, "invalid_image"),
    (InvalidQualityError, 400, "invalid_quality"),
    (CodecError, 400, "corrupt_stream"),
    (BatcherClosedError, 503, "shutting_down"),
)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for any exception; unknown ones are a 500 that names no internals."""
    if isinstance(exc, CloudError):
        return exc.status, exc.code, exc.message
    known = lookup(_LIBRARY, exc)
    if known is not None:
        return known
    return 500, "internal_error", "the cloud failed to process this request (see its log)"


def _outcome(status: int) -> str:
    if status == 401:
        return "unauthorized"
    if status == 503:
        return "overloaded"
    return "failed" if status >= 500 else "rejected"


def _count(request: Request, status: int) -> None:
    """Every refused /analyze request is a frame with an outcome (what is known of it by then)."""
    if request.url.path != ANALYZE_PATH:
        return
    metrics = getattr(request.app.state, "metrics", None)
    frame = getattr(request.state, "frame", None)  # cloud.analysis.FrameLabels, once the query parsed
    if metrics is not None:
        metrics.frame(_outcome(status), getattr(frame, "codec", None), getattr(frame, "camera", None))


def install_error_handlers(app: FastAPI) -> None:
    async def cloud_or_library(request: Request, exc: Exception) -> JSONResponse:
        status, code, message = classify(exc)
        if status >= 500:
            log.error("%s %s → %d %s: %s", request.method, request.url.path, status, code, exc,
                      exc_info=code == "internal_error")
        _count(request, status)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "1"}
        return error_response(status, code, message, headers)

    async def validation(request: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        _count(request, 422)
        return error_response(422, "invalid_parameters", validation_message(list(exc.errors())))

    async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                              getattr(exc, "headers", None))

    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]
    app.add_exception_handler(ValidationError, validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_exception)  # type: ignore[arg-type]
    # each known class gets its own handler: Starlette re-raises what reaches the catch-all
    # Exception handler (after answering), which is right only for real bugs
    handled: list[type[BaseException]] = [CloudError, *(c for c, _s, _c in _LIBRARY)]
    for cls in handled:
        app.add_exception_handler(cls, cloud_or_library)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, cloud_or_library)
