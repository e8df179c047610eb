"""The one owner of thread counts, worker counts and every environment variable the project reads.

Nothing else calls ``os.environ``: a process builds its settings once with
:func:`runtime_settings` (from the environment, or from an explicit mapping in tests), applies
them with :func:`apply_runtime`, and hands them to codecs and backends. Settings are never built
at import time, so importing a module has no side effects and tests can pass their own.

Thread counts change speed, never results: x265 and ONNX Runtime give identical output for any
number of threads, so none of these values is part of a cache key.

Environment variables:

========================  ==================================================================
``PREPICM_SHARED_DIR``    shared data and weights folder (default ``<repo>/../shared``)
``PREPICM_CACHE_DIR``     root of every cache the project writes (default
                          ``$XDG_CACHE_HOME/prepicm``, else ``~/.cache/prepicm``)
``PREPICM_ENGINE_CACHE``  TensorRT engine cache (default ``<cache root>/engines``)
``PREPICM_NPP_BACKEND``   NPP backend for evaluation preprocessing (default ``auto``)
``PREPICM_X265_POOLS``    x265 thread-pool size (default: x265's, one thread per CPU)
``PREPICM_X265_FRAME_THREADS``  x265 frame threads (default: x265's)
``PREPICM_ORT_THREADS``   ONNX Runtime intra-op threads (default: physical cores)
``PREPICM_TORCH_THREADS`` torch intra-op threads (default: torch's own choice)
``PREPICM_ENCODE_WORKERS``  encoder processes for sweeps and batches (default 2)
``LOCAL_RANK``            this process's index on its machine, set by ``torchrun``
``TORCH_HOME``, ``XDG_CACHE_HOME``  read for torch's hub folder and the cache root
========================  ==================================================================
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class RuntimeSettingsError(ValueError):
    """An environment variable holds a value the settings cannot take."""


class RuntimeSettings(BaseModel):
    """Threads, processes and folders of one process (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    x265_pools: int | None = Field(None, ge=1, description="x265 thread-pool size ('pools'); None: x265's own")
    x265_frame_threads: int | None = Field(None, ge=1, description="x265 'frame-threads'; None: x265's own")
    ort_intra_op_threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads")
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads")
    encode_workers: int = Field(2, ge=1, description="encoder processes (sweeps, batches)")
    shared_dir: Path | None = None
    cache_dir: Path | None = None
    engine_cache_dir: Path | None = None
    npp_backend: str = "auto"
    local_rank: int | None = Field(None, ge=0, description="set by torchrun: the process's GPU on its machine")
    torch_home: Path | None = None
    xdg_cache_home: Path | None = None

    def x265_params(self) -> str:
        """The x265-params fragment (``:pools=…:frame-threads=…``) for these thread counts."""
        pools = "" if self.x265_pools is None else f":pools={self.x265_pools}"
        frames = "" if self.x265_frame_threads is None else f":frame-threads={self.x265_frame_threads}"
        return pools + frames


_ENV: dict[str, str] = {
    "x265_pools": "PREPICM_X265_POOLS",
    "x265_frame_threads": "PREPICM_X265_FRAME_THREADS",
    "ort_intra_op_threads": "PREPICM_ORT_THREADS",
    "torch_threads": "PREPICM_TORCH_THREADS",
    "encode_workers": "PREPICM_ENCODE_WORKERS",
    "shared_dir": "PREPICM_SHARED_DIR",
    "cache_dir": "PREPICM_CACHE_DIR",
    "engine_cache_dir": "PREPICM_ENGINE_CACHE",
    "npp_backend": "PREPICM_NPP_BACKEND",
    "local_rank": "LOCAL_RANK",
    "torch_home": "TORCH_HOME",
    "xdg_cache_home": "XDG_CACHE_HOME",
}


def runtime_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> RuntimeSettings:
    """Settings from ``environ`` (default: this process's environment), then ``overrides``."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field, var in _ENV.items():
        raw = env.get(var)
        if raw:
            values[field] = Path(raw).expanduser() if field.endswith(("_dir", "_home")) else raw
    values.update(overrides)
    try:
        return RuntimeSettings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        bad = "; ".join(f"{_ENV.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors())
        raise RuntimeSettingsError(f"invalid runtime settings: {bad}") from None


def child_environment(overrides: Mapping[str, str], *, drop_prefixes: tuple[str, ...] = (),
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process this one starts (the demo and benchmarks start the
    services this way): ``environ`` (default: this process's) without the variables that start
    with one of ``drop_prefixes`` (so a shell's ``PREPICM_EDGE_*`` cannot leak into a service
    started with settings of its own), plus ``overrides``."""
    env = os.environ if environ is None else environ
    out = {k: v for k, v in env.items() if not k.startswith(drop_prefixes)} if drop_prefixes else dict(env)
    out.update(overrides)
    return out


_active: RuntimeSettings | None = None


def apply_runtime(settings: RuntimeSettings) -> RuntimeSettings:
    """Make ``settings`` this process's: torch's thread count now (when torch is loaded) and the
    values :func:`current_runtime` hands to codecs and backends created afterwards."""
    global _active
    _active = settings
    torch = sys.modules.get("torch")
    if torch is not None and settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    return settings


def current_runtime() -> RuntimeSettings:
    """The settings applied in this process, else the environment's (built now, not at import)."""
    return _active if _active is not None else runtime_settings()
