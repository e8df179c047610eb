"""The one place where library and request errors become HTTP answers (a :class:`shared.wire.ErrorBody`).

Every 4xx/5xx the edge sends is ``{"error": <code>, "message": <one sentence>}``. Routes and the
service raise typed exceptions (the edge's own below, the codec layer's, the NPP manifest's); they
never build error responses themselves.
"""

from __future__ import annotations

import logging
from concurrent.futures.process import BrokenProcessPool

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.backends.errors import BackendError
from shared.codecs.errors import (
    CodecError,
    CodecUnavailableError,
    CorruptStreamError,
    InvalidImageError,
    InvalidQualityError,
    StreamTooLargeError,
    UnsupportedFeatureError,
)
from shared.manifest import ManifestError, OperatingPointError
from shared.preprocess import PreprocessorError
from shared.registry import RegistryError
from shared.service_errors import ErrorTable, ServiceError, error_response, lookup, validation_message
from shared.wire import ErrorBody

log = logging.getLogger("edge")


class EdgeError(ServiceError):
    """An error of the edge service with its HTTP status and machine-readable code."""


class UnauthorizedError(EdgeError):
    status, code = 401, "unauthorized"


class BodyTooLargeError(EdgeError):
    status, code = 413, "body_too_large"


class UnsupportedMediaError(EdgeError):
    status, code = 415, "unsupported_media_type"


class FrameDecodeError(EdgeError):
    """The uploaded bytes are not a readable image (not an image, truncated, corrupt)."""

    status, code = 400, "invalid_image"


class FrameTooLargeError(EdgeError):
    """The image's header declares more pixels than the edge accepts."""

    status, code = 413, "image_too_large"


class ParameterError(EdgeError):
    status, code = 422, "invalid_parameters"


class NppNotConfiguredError(EdgeError):
    status, code = 422, "npp_not_configured"


class CloudRejectedError(EdgeError):
    """The cloud answered 4xx: retrying the same request cannot help."""

    status, code = 502, "cloud_rejected"

    def __init__(self, message: str, cloud_status: int, cloud_error: ErrorBody | None = None) -> None:
        super().__init__(message)
        self.cloud_status = cloud_status
        self.cloud_error = cloud_error


class CloudUnavailableError(EdgeError):
    """The cloud could not be reached (or answered 5xx) after the retries."""

    status, code = 503, "cloud_unavailable"


class BusyError(EdgeError):
    """More frames are in process than MAX_IN_FLIGHT: the camera should retry shortly."""

    status, code = 503, "busy"


class EncoderUnavailableError(EdgeError):
    status, code = 503, "encoder_unavailable"


#: library errors a request can cause → (status, code); the first matching class wins
_LIBRARY: ErrorTable = (
    (InvalidQualityError, 422, "quality_out_of_range"),
    (StreamTooLargeError, 413, "image_too_large"),
    (InvalidImageError, 422, "invalid_image"),
    (UnsupportedFeatureError, 422, "unsupported_feature"),
    (CodecUnavailableError, 422, "codec_unavailable"),
    (CorruptStreamError, 422, "corrupt_stream"),
    (CodecError, 422, "encode_failed"),
    (RegistryError, 422, "unknown_codec"),  # the only registry a request names is the codec's
    (OperatingPointError, 422, "operating_point_unsupported"),
    (ManifestError, 500, "npp_unusable"),
    (PreprocessorError, 500, "npp_failed"),
    (BackendError, 500, "npp_failed"),
    (BrokenProcessPool, 503, "encoder_unavailable"),
)


#: Starlette's own refusals (routing, form parsing) → our codes
_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for any exception; unknown ones are a 500 that names no internals."""
    if isinstance(exc, EdgeError):
        return exc.status, exc.code, exc.message
    if isinstance(exc, StarletteHTTPException):  # e.g. a multipart form over its limits: a 4xx, not a failure
        return exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail)
    if isinstance(exc, (ValidationError, RequestValidationError)):
        return 422, "invalid_parameters", validation_message(list(exc.errors()))
    known = lookup(_LIBRARY, exc)
    if known is not None:
        return known
    return 500, "internal_error", "the edge failed to process this request (see its log)"


def install_error_handlers(app: FastAPI) -> None:
    async def edge_or_library(request: Request, exc: Exception) -> JSONResponse:
        status, code, message = classify(exc)
        if status >= 500:
            log.error("%s %s → %d %s: %s", request.method, request.url.path, status, code, exc,
                      exc_info=code == "internal_error")
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {"Retry-After": "1"} if code == "busy" else None
        return error_response(status, code, message, headers)

    async def request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_parameters", validation_message(list(exc.errors())))

    async def pydantic_validation(request: Request, exc: ValidationError) -> JSONResponse:
        return error_response(422, "invalid_parameters", validation_message(list(exc.errors())))

    async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, code, message = classify(exc)
        return error_response(status, code, message, getattr(exc, "headers", None))

    app.add_exception_handler(RequestValidationError, request_validation)  # type: ignore[arg-type]
    app.add_exception_handler(ValidationError, pydantic_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_exception)  # type: ignore[arg-type]
    # each known class gets its own handler: Starlette re-raises what reaches the catch-all
    # Exception handler (after answering), which is right only for real bugs
    known: list[type[Exception]] = [EdgeError, *(c for c, _s, _c in _LIBRARY if issubclass(c, Exception))]
    for cls in known:
        app.add_exception_handler(cls, edge_or_library)
    app.add_exception_handler(Exception, edge_or_library)
