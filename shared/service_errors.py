"""Error answers of the HTTP services (edge and cloud): the typed error base their own errors
derive from, the library-error lookup table, and the :class:`shared.wire.ErrorBody` response.

Each service keeps its own table (the same codec error can mean a bad upload at the edge and a
corrupt stream at the cloud) and installs its own handlers; what an error answer *is* lives here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

from shared.wire import ErrorBody

#: library errors a request can cause → (status, code); the first matching class wins
ErrorTable = tuple[tuple[type[BaseException], int, str], ...]


class ServiceError(Exception):
    """An error with its HTTP status and machine-readable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def lookup(table: ErrorTable, exc: BaseException) -> tuple[int, str, str] | None:
    """(status, code, message) of the first table row ``exc`` is an instance of, else None."""
    for cls, status, code in table:
        if isinstance(exc, cls):
            return status, code, str(exc) or cls.__name__
    return None


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """One sentence from pydantic's error list (the first five, located without ``query.``)."""
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body"))
        parts.append(f"{loc or 'request'}: {e.get('msg')}")
    return "; ".join(parts)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=code, message=message).model_dump(), status_code=status, headers=headers)
