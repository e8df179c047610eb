"""The cloud service's settings: one pydantic-settings class, environment prefix ``PREPICM_CLOUD_``.

Built by the app factory (never at import), so tests pass their own. Unsafe values fail at start:
outside development (``DEV=true``) the bearer token the edge sends is required.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.paths import cache_dir
from shared.tasks import TASKS

MIB = 1024 * 1024


class CloudSettings(BaseSettings):
    """Every knob of the cloud service (docs/cloud.md says what each one does)."""

    model_config = SettingsConfigDict(env_prefix="PREPICM_CLOUD_", case_sensitive=False, extra="forbid",
                                      frozen=True)

    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8001, ge=0, le=65535)
    LOG_LEVEL: str = Field(default="info", pattern=r"^(?i:critical|error|warning|info|debug|trace)$")
    DEV: bool = False
    #: the shared bearer secret every /analyze and /results request carries
    TOKEN: SecretStr | None = None

    #: SQLAlchemy URL; None: a SQLite file ``cache_dir("cloud")/results.db``. ``postgresql://…``
    #: uses the psycopg (3) driver.
    DATABASE_URL: str | None = None

    # the task models: loaded once at start, on DEVICE
    TASKS: Annotated[tuple[str, ...], NoDecode] = ("yolov5n",)
    DEVICE: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    #: per task name, the options get_task takes, e.g. {"yolov5n": {"img_size": 320}}
    TASK_OPTIONS: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # dynamic batching: a task's concurrent frames run as one predict() call
    MAX_BATCH: int = Field(default=8, ge=1, le=256)
    MAX_DELAY_MS: float = Field(default=10.0, ge=0, le=10_000)

    # what one request may cost
    MAX_BODY_BYTES: int = Field(default=8 * MIB, ge=1024)
    MAX_PIXELS: int = Field(default=40_000_000, ge=1)
    #: /analyze requests in progress at once; more are answered 503 (the edge spools and retries)
    MAX_INFLIGHT: int = Field(default=64, ge=1)
    #: threads decoding bitstreams at once (each holds one decoded frame)
    DECODE_WORKERS: int = Field(default=2, ge=1, le=64)

    @field_validator("MAX_PIXELS", "MAX_BODY_BYTES", mode="before")
    @classmethod
    def _whole_number(cls, v: Any) -> Any:
        # "40e6" reads as a float; accept it when it is a whole number
        if isinstance(v, (str, float)):
            try:
                f = float(v)
            except ValueError:
                return v
            if f.is_integer():
                return int(f)
        return v

    @field_validator("TASKS", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(t.strip() for t in v.split(",") if t.strip())
        return v

    @field_validator("TASKS")
    @classmethod
    def _known_tasks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("TASKS names no task model")
        for name in v:
            if name not in TASKS:
                raise ValueError(f"unknown task model {name!r}; choose one of: {', '.join(TASKS.names())}")
        names = tuple(name.lower() for name in v)
        if len(set(names)) != len(names):
            raise ValueError(f"TASKS names a task twice: {','.join(v)}")
        return names

    @field_validator("TASK_OPTIONS")
    @classmethod
    def _options_for_known(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = [name for name in v if name not in TASKS]
        if unknown:
            raise ValueError(f"TASK_OPTIONS names unknown tasks {unknown}; known: {', '.join(TASKS.names())}")
        return {name.lower(): opts for name, opts in v.items()}

    @field_validator("DATABASE_URL")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError(f"DATABASE_URL must be a sqlite:/// or postgresql:// URL, got {v.split(':')[0]}:…")
        return v

    @model_validator(mode="after")
    def _safe(self) -> CloudSettings:
        if not self.DEV and (self.TOKEN is None or not self.TOKEN.get_secret_value().strip()):
            raise ValueError("PREPICM_CLOUD_TOKEN is required (the bearer secret edges send); "
                             "set PREPICM_CLOUD_DEV=true only for local development without one")
        return self

    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite:///{cache_dir('cloud') / 'results.db'}"

    def task_options(self, name: str) -> dict[str, Any]:
        return dict(self.TASK_OPTIONS.get(name.lower(), {}))

    @property
    def token(self) -> str | None:
        return None if self.TOKEN is None else self.TOKEN.get_secret_value()
