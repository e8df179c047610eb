"""The edge service's settings: one pydantic-settings class, environment prefix ``PREPICM_EDGE_``.

Built by the app factory (never at import), so tests pass their own. Unsafe values fail at start:
outside development (``DEV=true``) the cloud's bearer token is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.codecs import CODECS
from shared.paths import shipped_npp_dir

MIB = 1024 * 1024


def _shipped_npp() -> Path | None:
    d = shipped_npp_dir()
    return d if (d / "manifest.json").is_file() else None


class BandwidthBudget(BaseModel):
    """A camera's uplink budget: ``bits_per_second`` spent on ``fps`` frames a second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bits_per_second: float = Field(gt=0)
    fps: float = Field(gt=0, le=1000)

    @property
    def bits_per_frame(self) -> float:
        return self.bits_per_second / self.fps


class EdgeSettings(BaseSettings):
    """Every knob of the edge service (see docs/edge.md for what each one does)."""

    model_config = SettingsConfigDict(env_prefix="PREPICM_EDGE_", case_sensitive=False, extra="forbid",
                                      frozen=True)

    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=0, le=65535)
    LOG_LEVEL: str = "info"
    DEV: bool = False

    # the cloud this edge forwards to
    CLOUD_URL: str = "http://127.0.0.1:8001"
    CLOUD_TOKEN: SecretStr | None = None
    CONNECT_TIMEOUT_S: float = Field(default=2.0, gt=0)
    UPLOAD_TIMEOUT_S: float = Field(default=30.0, gt=0)
    UPLOAD_RETRIES: int = Field(default=2, ge=0, le=10)  # extra attempts on connect errors / 5xx
    RETRY_BACKOFF_S: float = Field(default=0.2, ge=0)  # first retry delay; doubles per attempt, with jitter
    DELIVERY_BACKOFF_MAX_S: float = Field(default=30.0, gt=0)  # the spool's retry delay grows up to this

    # cameras → this edge
    CAMERA_TOKEN: SecretStr | None = None
    MAX_BODY_BYTES: int = Field(default=32 * MIB, ge=1024)
    MAX_PIXELS: int = Field(default=40_000_000, ge=1)
    #: frames processed at once; more are answered 503 before their body is read (bounds memory
    #: to about MAX_IN_FLIGHT × (MAX_BODY_BYTES + 3 × MAX_PIXELS))
    MAX_IN_FLIGHT: int = Field(default=16, ge=1, le=1024)

    # what runs on a frame
    #: an exported NPP folder; default the one the project ships (when present), "none" for none
    NPP_ARTIFACT: Path | None = Field(default_factory=lambda: _shipped_npp())
    NPP_BACKEND: str = "auto"
    CODEC: str = "bpg"
    #: per codec name, the options its constructor takes, e.g. {"bpg": {"level": 5}}
    CODEC_OPTIONS: dict[str, dict[str, Any]] = Field(default_factory=dict)
    QUALITY: int = 32
    ENCODE_WORKERS: int | None = Field(default=None, ge=1, le=64)  # None: shared.runtime's encode_workers
    PLAIN_SAMPLE_EVERY: int = Field(default=10, ge=0)  # 0: never sample a plain encode

    # rate control
    #: per camera id ("*" = every camera without its own entry): an uplink budget the QP follows
    BANDWIDTH_BUDGETS: dict[str, BandwidthBudget] = Field(default_factory=dict)
    RC_MAX_TRIALS: int = Field(default=4, ge=1, le=16)  # real encodes per frame, at most
    RC_TOLERANCE: float = Field(default=0.05, gt=0, lt=1)  # stop searching once within ±this of the target

    # reliability
    SPOOL_DIR: Path | None = None  # None: shared.paths.cache_dir("edge") / "spool"
    SPOOL_MAX_BYTES: int = Field(default=256 * MIB, ge=1)

    @field_validator("NPP_ARTIFACT", mode="before")
    @classmethod
    def _none_word(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.strip().lower() in ("", "none") else v

    @field_validator("CODEC")
    @classmethod
    def _known_codec(cls, v: str) -> str:
        if v not in CODECS:
            raise ValueError(f"unknown codec {v!r}; choose one of: {', '.join(CODECS.names())}")
        return v.lower()

    @field_validator("CODEC_OPTIONS")
    @classmethod
    def _known_codecs(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = [name for name in v if name not in CODECS]
        if unknown:
            raise ValueError(f"CODEC_OPTIONS names unknown codecs {unknown}; known: {', '.join(CODECS.names())}")
        return {name.lower(): opts for name, opts in v.items()}

    @field_validator("CLOUD_URL")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"CLOUD_URL must be an http:// or https:// URL, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _safe(self) -> EdgeSettings:
        if not self.DEV and (self.CLOUD_TOKEN is None or not self.CLOUD_TOKEN.get_secret_value()):
            raise ValueError("PREPICM_EDGE_CLOUD_TOKEN is required (the cloud's bearer secret); "
                             "set PREPICM_EDGE_DEV=true only for local development")
        CODECS.get(self.CODEC).quality.check(self.QUALITY)
        return self

    def codec_options(self, codec: str) -> dict[str, Any]:
        return dict(self.CODEC_OPTIONS.get(codec.lower(), {}))

    def budget_for(self, camera_id: str) -> BandwidthBudget | None:
        return self.BANDWIDTH_BUDGETS.get(camera_id) or self.BANDWIDTH_BUDGETS.get("*")
