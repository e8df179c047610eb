"""``POST /analyze``: the body is the bitstream, the query the frame's :class:`shared.wire.AnalyzeParams`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from cloud.analysis import FrameLabels
from cloud.api.deps import AnalyzerDep, Auth, Settings, read_body
from shared.wire import ANALYZE_PATH, BITSTREAM_MEDIA_TYPE, AnalyzeParams, AnalyzeResult, ErrorBody

router = APIRouter(tags=["analyze"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 413, 415, 422, 503)}
_BODY = {"requestBody": {"required": True, "content": {BITSTREAM_MEDIA_TYPE: {"schema": {"type": "string",
                                                                                       "format": "binary"}}}}}


@router.post(ANALYZE_PATH, response_model=AnalyzeResult, responses=_ERRORS, openapi_extra=_BODY,
             summary="decode a bitstream and run the task models on it")
async def analyze(request: Request, params: Annotated[AnalyzeParams, Query()], analyzer: AnalyzerDep,
                  settings: Settings, _auth: Auth) -> AnalyzeResult:
    labels = request.state.frame = FrameLabels(camera=params.camera_id)  # for the metrics of a refusal
    accepted = analyzer.accept(params, labels)
    with analyzer.admission() as ticket:
        bitstream = await read_body(request, settings.MAX_BODY_BYTES)
        return await analyzer.analyze(accepted, bitstream, ticket)
