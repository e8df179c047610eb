"""Backends by config name (``tensorrt``, ``onnxruntime``, ``torch``, ``auto``) and the auto choice."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.backends.base import NppBackend
from edge.backends.errors import BackendError, BackendUnavailableError
from edge.backends.loader import Artifact, load_artifact
from shared.registry import Registry

log = logging.getLogger("edge.backends")

BackendFactory = Callable[..., NppBackend]
BACKENDS: Registry[BackendFactory] = Registry("NPP backend")


def _tensorrt(artifact: Artifact, **options: Any) -> NppBackend:
    from edge.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(artifact, **options)


def _onnxruntime(artifact: Artifact, **options: Any) -> NppBackend:
    from edge.backends.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(artifact, **options)


def _torch(artifact: Artifact, **options: Any) -> NppBackend:
    from edge.backends.torch_backend import TorchBackend

    return TorchBackend(artifact, **options)


def _auto(artifact: Artifact, **options: Any) -> NppBackend:
    """TensorRT → ONNX Runtime (CUDA, then CPU) → PyTorch; every decision is logged with its reason.

    TensorRT with its defaults: a prebuilt engine from the artifact, else the local engine cache
    (``$PREPICM_ENGINE_CACHE`` or ``~/.cache/prepicm/engines``), else one built on this GPU now.
    """
    if options:
        raise BackendError(f"the auto backend takes no options (got {sorted(options)}); name a backend")
    try:
        backend = _tensorrt(artifact)
        info = backend.describe()
        log.info("auto: picked tensorrt for %s: %s engine %s for %s", artifact.manifest.variant,
                 info.get("engine_source"), info.get("engine"), info.get("gpu"))
        return backend
    except BackendUnavailableError as exc:
        log.info("auto: tensorrt not used: %s", exc)
    except BackendError as exc:  # present but broken (e.g. an engine that fails to load): keep serving
        log.warning("auto: tensorrt failed, falling back: %s", exc)
    try:
        from edge.backends.onnxruntime_backend import import_onnxruntime

        providers = import_onnxruntime().get_available_providers()
        if "CUDAExecutionProvider" in providers:
            try:
                backend = _onnxruntime(artifact, device="cuda")
                log.info("auto: picked onnxruntime (CUDAExecutionProvider): TensorRT unusable, CUDA provider present")
                return backend
            except BackendError as exc:
                log.info("auto: onnxruntime CUDA not used: %s", exc)
        backend = _onnxruntime(artifact, device="cpu")
        log.info("auto: picked onnxruntime (CPUExecutionProvider): no TensorRT engine or CUDA provider "
                 "usable here (available providers: %s)", providers)
        return backend
    except BackendUnavailableError as exc:
        log.info("auto: onnxruntime not used: %s", exc)
    backend = _torch(artifact)
    log.info("auto: picked torch (TorchScript): neither TensorRT nor ONNX Runtime is usable")
    return backend


BACKENDS.register("tensorrt", _tensorrt)
BACKENDS.register("onnxruntime", _onnxruntime)
BACKENDS.register("torch", _torch)
BACKENDS.register("auto", _auto)


def create_backend(
    name: str,
    directory: Path | str,
    variant: str | None = None,
    codec: str | None = None,
    quality: float | None = None,
    require_trained: bool = False,
    **options: Any,
) -> NppBackend:
    """Validate the artifact (manifest, request) and open it with the named backend.

    ``options`` go to the backend: onnxruntime ``device`` ('auto'|'cpu'|'cuda'), ``threads``;
    torch ``device``, ``fp16``, ``threads``; tensorrt ``precision`` ('fp16'|'fp32'), ``device``,
    ``cache_dir`` (local engine cache), ``build`` (False: never build an engine here), ``profile``
    (``shared.tensorrt_engine.Profile`` for engines built here), ``workspace_gib``.
    """
    factory = BACKENDS.get(name)
    artifact = load_artifact(directory, variant=variant, codec=codec, quality=quality,
                             require_trained=require_trained)
    return factory(artifact, **options)
