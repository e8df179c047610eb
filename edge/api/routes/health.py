"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge.api.deps import Metrics
from edge.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="the edge can encode frames now")
async def readyz(request: Request) -> JSONResponse:
    state = getattr(request.app.state, "edge", None)
    if state is None:
        return error_response(503, "not_ready", "the edge is starting")
    return JSONResponse({
        "status": "ready",
        "codec": state.settings.CODEC,
        "npp": None if state.service.npp is None else state.service.npp.preprocessor_id,
        "npp_backend": state.npp_description,
        "encoder_workers": state.encoders.workers,
        "encoder_restarts": state.encoders.restarts,
        "spool_frames": len(state.spool),
        "spool_bytes": state.spool.bytes,
        "cloud_url": state.settings.CLOUD_URL,
        "cloud_reachable": state.cloud.reachable,  # last known; the edge spools while it is false
    })


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(m: Metrics) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
