"""What ``POST /encode`` accepts (its parameters; the frame is the body). What it returns is
:class:`shared.wire.EncodeResult`, or the bitstream itself with ``forward=false``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.wire import MAX_FRAME_ID, AnalyzeParams

#: the camera id rule of the wire format, read from it so the two cannot drift apart
CAMERA_ID_PATTERN: str = AnalyzeParams.model_json_schema()["properties"]["camera_id"]["pattern"]


class EncodeParams(BaseModel):
    """Query parameters (or form fields beside a multipart ``frame``) of ``POST /encode``."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(pattern=CAMERA_ID_PATTERN, description="the camera's stable id")
    frame_id: int = Field(ge=0, le=MAX_FRAME_ID,
                          description="the camera's frame counter; (camera_id, frame_id) is unique")
    captured_at: float | None = Field(None, ge=0, allow_inf_nan=False,
                                      description="capture time (Unix seconds); default: now")
    codec: str | None = Field(None, description="codec registry name; default: the edge's CODEC")
    quality: int | None = Field(None, description="codec quality (QP for BPG); default: rate control or QUALITY")
    target_bpp: float | None = Field(None, gt=0, le=64, description="rate control: aim at this many bits per pixel")
    npp: bool | None = Field(None, description="run the NPP; default: true when an artifact is configured")
    forward: bool = Field(True, description="send to the cloud (true) or answer with the bitstream (false)")
    tasks: str | None = Field(None, max_length=512, description="comma-separated cloud task names")

    @model_validator(mode="after")
    def _one_rate_knob(self) -> EncodeParams:
        if self.quality is not None and self.target_bpp is not None:
            raise ValueError("give quality or target_bpp, not both")
        return self
