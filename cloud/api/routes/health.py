"""Liveness, readiness and the Prometheus exposition (open: no token)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud.api.deps import Metrics
from cloud.errors import error_response

router = APIRouter(tags=["health"])
log = logging.getLogger("cloud")

#: a database that takes longer than this to answer SELECT 1 is "not ready"
DB_PING_TIMEOUT_S = 2.0


@router.get("/healthz", summary="the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="models are loaded and the database answers")
async def readyz(request: Request) -> JSONResponse:
    state = getattr(request.app.state, "cloud", None)
    if state is None:
        return error_response(503, "not_ready", "the cloud is starting or stopping")
    stopped = [name for name, b in state.batchers.items() if not b.running]
    if stopped:
        return error_response(503, "not_ready", f"task model(s) not running: {', '.join(stopped)}")
    try:
        await asyncio.wait_for(asyncio.to_thread(state.store.ping), DB_PING_TIMEOUT_S)
    except Exception as exc:  # any failure to answer is "not ready", never a crash
        log.warning("readyz: database %s does not answer: %s", state.store.url, exc)
        return error_response(503, "not_ready", f"the database does not answer ({type(exc).__name__})")
    return JSONResponse({
        "status": "ready",
        "tasks": {name: b.model.kind for name, b in state.batchers.items()},
        "device": state.settings.DEVICE,
        "database": state.store.backend,
        "max_batch": state.settings.MAX_BATCH,
        "max_delay_ms": state.settings.MAX_DELAY_MS,
        "waiting": {name: b.waiting for name, b in state.batchers.items()},
    })


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(m: Metrics) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
