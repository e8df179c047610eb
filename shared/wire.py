"""The edge → cloud wire format: how a bitstream travels to ``POST /analyze`` and what comes back.

The request body is the standard bitstream itself (``application/octet-stream``), so any HTTP
tool can send a ``.bpg``/``.jpg`` file; everything else travels as query parameters
(:class:`AnalyzeParams`). The answer is :class:`AnalyzeResult`; every 4xx/5xx answer of either
service is an :class:`ErrorBody`. Edge and cloud both build and parse these classes, so the two
sides cannot drift apart.

Idempotency: the cloud stores one result per ``(camera_id, frame_id)``; a second request with the
same pair returns the stored result with ``duplicate=True`` and is not counted again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Header carrying ``Bearer <token>`` between edge and cloud (and optionally cameras → edge).
AUTH_HEADER = "Authorization"
BITSTREAM_MEDIA_TYPE = "application/octet-stream"
ANALYZE_PATH = "/analyze"
ENCODE_PATH = "/encode"

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


#: frame ids are stored as signed 64-bit integers (BIGINT in PostgreSQL, INTEGER in SQLite): a larger
#: one is refused where it enters (a 422), never left to fail in a database driver or to be retried
MAX_FRAME_ID = 2**63 - 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeParams(_Model):
    """Query parameters of ``POST /analyze`` (the body is the bitstream)."""

    camera_id: str = Field(pattern=_ID, description="the camera's stable id")
    frame_id: int = Field(ge=0, le=MAX_FRAME_ID,
                          description="the camera's frame counter; (camera_id, frame_id) is unique")
    captured_at: float = Field(ge=0, allow_inf_nan=False, description="capture time, seconds since the Unix epoch")
    codec: str | None = Field(None, description="codec name; default: detected from the bitstream's header")
    tasks: str | None = Field(None, description="comma-separated task names; default: the cloud's configured tasks")
    # what the edge knows about the frame, stored with the result
    npp: str | None = Field(None, description="preprocessor id the edge ran, or none")
    quality: int | None = Field(None, description="codec quality (QP for BPG/VVC) the edge used")
    plain_bits: int | None = Field(None, ge=0, description="bits of a sampled plain encode of the same frame")

    def task_list(self) -> list[str] | None:
        return None if not self.tasks else [t.strip() for t in self.tasks.split(",") if t.strip()]


class TaskResult(_Model):
    """One task's answer: the task output's own JSON (:meth:`shared.tasks.TaskOutput.to_json`,
    detections with boxes in original pixels, or classification top-k) and its inference time."""

    task: str
    kind: str
    output: dict[str, Any]
    seconds: float


class AnalyzeResult(_Model):
    """What ``POST /analyze`` returns (and ``GET /results`` lists)."""

    camera_id: str
    frame_id: int
    captured_at: float
    codec: str
    width: int
    height: int
    bits: int
    bpp: float
    npp: str | None = None
    quality: int | None = None
    plain_bits: int | None = None
    decoder_id: str
    results: list[TaskResult]
    timings_s: dict[str, float] = Field(default_factory=dict)  # "decode", "queue", "analyze:<task>"
    received_at: float
    duplicate: bool = False  # True: this (camera, frame) was already analysed; stored result returned


class EncodeResult(_Model):
    """What the edge's ``POST /encode`` returns when it forwards (``forward=true``, the default)."""

    camera_id: str
    frame_id: int
    codec: str
    quality: int
    width: int
    height: int
    bits: int
    bpp: float
    npp: str | None = None
    plain_bits: int | None = None
    timings_s: dict[str, float] = Field(default_factory=dict)  # "decode_input", "preprocess", "encode", "upload"
    delivered: bool  # False: the cloud was unreachable and the bitstream waits in the spool
    cloud: AnalyzeResult | None = None


class ErrorBody(_Model):
    """Every error either service answers: a machine-readable code and one human sentence."""

    error: str  # e.g. "corrupt_stream", "unknown_codec", "quality_out_of_range", "unauthorized"
    message: str
