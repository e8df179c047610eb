"""The edge → cloud uplink: ``POST /analyze`` with the bitstream as body (:mod:`shared.wire`).

One pooled ``httpx.AsyncClient`` per app (explicit timeouts and connection limits, closed in the
lifespan). Connect errors, pool/connect timeouts and 5xx answers are retried with exponential
backoff and jitter; a 4xx is never retried (the same request would be refused again), and neither
is a read timeout inline (the cloud may be working on it: the frame goes to the spool, whose
retry is safe because the cloud stores one result per (camera_id, frame_id)).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from edge.errors import CloudRejectedError, CloudUnavailableError
from shared.wire import ANALYZE_PATH, AUTH_HEADER, BITSTREAM_MEDIA_TYPE, AnalyzeParams, AnalyzeResult, ErrorBody

log = logging.getLogger("edge.uplink")

_RETRIED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError)


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": half the doubled delay fixed, half random, so a
    fleet of edges that lost the cloud together does not retry in lockstep."""
    d = min(max_s, base_s * 2 ** attempt)
    return d / 2 + rng() * d / 2


@dataclass(frozen=True)
class Uploaded:
    result: AnalyzeResult | None  # None: the cloud answered 2xx with a body we could not read
    seconds: float
    attempts: int


class CloudClient:
    def __init__(self, base_url: str, token: str | None, *, connect_timeout_s: float = 2.0,
                 timeout_s: float = 30.0, retries: int = 2, backoff_s: float = 0.2, backoff_max_s: float = 5.0,
                 on_retry: Callable[[], None] | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Content-Type": BITSTREAM_MEDIA_TYPE}
        if token:
            headers[AUTH_HEADER] = f"Bearer {token}"
        self.retries, self.backoff_s, self.backoff_max_s = retries, backoff_s, backoff_max_s
        self.on_retry = on_retry
        self.base_url = base_url
        self.reachable: bool | None = None  # last known, for /readyz (None: not tried yet)
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8, keepalive_expiry=30.0),
        )

    async def analyze(self, params: AnalyzeParams, bitstream: bytes, *, retries: int | None = None) -> Uploaded:
        """Send one frame. Raises :class:`CloudRejectedError` on a 4xx and
        :class:`CloudUnavailableError` once the retries are spent (or on a read timeout)."""
        query = params.model_dump(exclude_none=True)
        tries = 1 + (self.retries if retries is None else retries)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        why = ""
        for attempt in range(tries):
            if attempt:
                if self.on_retry is not None:
                    self.on_retry()
                await asyncio.sleep(backoff_delay(attempt - 1, self.backoff_s, self.backoff_max_s))
            try:
                resp = await self._client.post(ANALYZE_PATH, params=query, content=bitstream)
            except _RETRIED as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            except httpx.TransportError as exc:  # read/write timeouts, a reset mid-answer: not inline
                self.reachable = False
                raise CloudUnavailableError(f"cloud at {self.base_url}: {type(exc).__name__}: {exc}") from None
            if resp.status_code >= 500:
                why = f"HTTP {resp.status_code}: {_error_text(resp)}"
                continue
            self.reachable = True
            if resp.status_code >= 400:
                body = _error_body(resp)
                raise CloudRejectedError(
                    f"the cloud refused the frame: HTTP {resp.status_code} {_error_text(resp)}",
                    resp.status_code, body)
            try:
                result = AnalyzeResult.model_validate_json(resp.content)
            except ValidationError as exc:
                log.warning("cloud answered %d with a body that is not an AnalyzeResult: %s", resp.status_code,
                            str(exc).splitlines()[0])
                result = None
            return Uploaded(result, loop.time() - t0, attempt + 1)
        self.reachable = False
        raise CloudUnavailableError(f"cloud at {self.base_url} unreachable after {tries} attempt(s): {why}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_body(resp: httpx.Response) -> ErrorBody | None:
    try:
        return ErrorBody.model_validate_json(resp.content)
    except ValidationError:
        return None


def _error_text(resp: httpx.Response) -> str:
    body = _error_body(resp)
    if body is not None:
        return f"{body.error}: {body.message}"
    return resp.text[:200]
