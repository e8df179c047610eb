"""``POST /encode``: a camera's frame in, a standard bitstream out to the cloud (or back)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from edge.api.deps import CameraAuth, State, read_upload
from edge.errors import CloudRejectedError, classify
from edge.schemas import EncodeParams
from shared.wire import BITSTREAM_MEDIA_TYPE, ENCODE_PATH, EncodeResult, ErrorBody

router = APIRouter(tags=["encode"])

_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (400, 401, 413, 415, 422, 502, 503)}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["frame"],
                "properties": {"frame": {"type": "string", "format": "binary"}},
            }},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "parameters": [
        {"name": name, "in": "query", "required": name in EncodeParams.model_json_schema().get("required", []),
         "schema": schema, "description": schema.get("description", "")}
        for name, schema in EncodeParams.model_json_schema()["properties"].items()
    ],
}


@router.post(
    ENCODE_PATH, response_model=EncodeResult, openapi_extra=_BODY,
    summary="encode a frame (NPP + standard codec) and forward it to the cloud",
    responses={**_ERRORS, 202: {"model": EncodeResult, "description": "cloud unreachable: spooled"},
               200: {"content": {BITSTREAM_MEDIA_TYPE: {}},
                     "description": "EncodeResult, or with forward=false the bitstream"}},
)
async def encode_frame(request: Request, state: State, _camera: CameraAuth) -> Response:
    """The frame is a multipart file field ``frame`` or the raw body (image/png, image/jpeg, …);
    parameters come as query parameters or as form fields beside ``frame``."""
    camera, codec = request.query_params.get("camera_id"), request.query_params.get("codec") or state.settings.CODEC
    try:
        with state.service.admit():  # before the body is read: bounds memory under a flood
            upload = await read_upload(request, state.settings.MAX_BODY_BYTES)
            camera, codec = upload.params.get("camera_id", camera), upload.params.get("codec", codec)
            params = EncodeParams.model_validate(upload.params)
            out = await state.service.encode(upload.data, params)
    except Exception as exc:
        status = classify(exc)[0]
        outcome = "rejected" if isinstance(exc, CloudRejectedError) else "invalid" if status < 500 else "failed"
        state.metrics.frame(outcome, codec if codec in state.metrics.codecs else "unknown", camera)
        raise
    enc = out.encoded
    if out.result is None:
        headers = {"X-PrepICM-Bits": str(enc.bits), "X-PrepICM-Quality": str(enc.quality),
                   "X-PrepICM-Codec": enc.codec, "X-PrepICM-BPP": f"{enc.bpp:.6f}",
                   "X-PrepICM-Width": str(enc.width), "X-PrepICM-Height": str(enc.height),
                   "X-PrepICM-NPP": enc.preprocessor_id or "none"}
        if out.plain_bits is not None:
            headers["X-PrepICM-Plain-Bits"] = str(out.plain_bits)
        if out.rc_trials:
            headers["X-PrepICM-RC-Encodes"] = str(out.rc_trials)
        return Response(enc.bitstream, media_type=BITSTREAM_MEDIA_TYPE, headers=headers)
    return JSONResponse(out.result.model_dump(), status_code=200 if out.result.delivered else 202)
