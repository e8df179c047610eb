"""``GET /results``: what the cloud has stored, by camera and capture time."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloud.api.deps import Auth, Store
from cloud.schemas import ResultsQuery
from shared.wire import AnalyzeResult, ErrorBody

router = APIRouter(prefix="/results", tags=["results"])


_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 422, 503)}


@router.get("", response_model=list[AnalyzeResult], responses=_ERRORS, summary="stored results, oldest capture first")
async def list_results(q: Annotated[ResultsQuery, Query()], store: Store, _auth: Auth) -> list[AnalyzeResult]:
    return await asyncio.to_thread(store.query, q.camera_id, q.since, q.until, q.limit)
