"""What the cloud's own endpoints accept besides the wire format (:mod:`shared.wire`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_RESULTS = 1000


class ResultsQuery(BaseModel):
    """``GET /results``: stored results by camera and capture time (seconds since the Unix epoch)."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    since: float | None = Field(None, ge=0, description="captured_at ≥ since")
    until: float | None = Field(None, ge=0, description="captured_at < until")
    limit: int = Field(default=100, ge=1, le=MAX_RESULTS, description=f"at most this many (≤ {MAX_RESULTS})")

    @model_validator(mode="after")
    def _ordered(self) -> ResultsQuery:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError(f"until ({self.until}) is before since ({self.since})")
        return self
