"""TensorRT backend: the fastest NPP path on an NVIDIA GPU; device buffers and a CUDA stream via
cuda-python; dynamic shapes per call within the engine's optimisation profile.

Where the engine comes from (first match wins, each step logged with its reason):

1. an engine listed in the artifact's manifest for this GPU model and TensorRT version (prebuilt by
   ``python -m training.export.tensorrt``), after its sha256 check;
2. the local engine cache (``cache_dir``; default ``$PREPICM_ENGINE_CACHE`` or
   ``~/.cache/prepicm/engines``), keyed by GPU model, compute capability, TensorRT version,
   precision, profile shapes and the ONNX's sha256;
3. a build from the artifact's ONNX (sha256-checked) on this GPU, stored in that cache.

Why build here: an engine is valid only for the GPU model and TensorRT version that built it, and a
fleet mixes both, so the artifact ships the ONNX and each edge compiles it once for its own GPU
(seconds to minutes at first start; later starts load the cached engine in well under a second).
Building and keys live in ``shared.tensorrt_engine``, shared with the training-side prebuild.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge.backends.base import BaseBackend, cond_array
from edge.backends.cuda_runtime import DeviceBuffer, check, detect_gpu, import_cudart
from edge.backends.errors import BackendError, BackendUnavailableError, InputError, MissingDependencyError
from edge.backends.loader import Artifact
from shared import tensorrt_engine as te
from shared.manifest import EngineEntry, NppManifest
from shared.tensorrt_engine import PRECISIONS, CacheLookup, EngineCache, EngineKey, GpuInfo, Precision, Profile

log = logging.getLogger("edge.backends")

#: Builds serialized engine bytes from (onnx path, precision, profile); ``te.build_serialized_engine``
#: in production.
EngineBuilder = Callable[[Path, Precision, Profile], bytes]
EngineSource = Literal["artifact", "cache", "built"]


def import_tensorrt() -> Any:
    try:
        return te.import_tensorrt()
    except te.TensorRTUnavailableError as exc:
        raise MissingDependencyError("tensorrt", "tensorrt", "tensorrt") from exc


@contextlib.contextmanager
def _backend_errors() -> Iterator[None]:
    """Engine-layer errors as backend errors: unavailable → ``auto`` falls back quietly (INFO);
    a failed build or unwritable cache → ``auto`` warns and falls back."""
    try:
        yield
    except te.TensorRTUnavailableError as exc:
        raise BackendUnavailableError(str(exc)) from exc
    except te.EngineError as exc:
        raise BackendError(str(exc)) from exc


def wanted_precisions(precision: str | None, fp16_supported: bool = True) -> tuple[Precision, ...]:
    """The precisions to look for, best first: the requested one, else fp16 then fp32."""
    if precision is None:
        return ("fp16", "fp32") if fp16_supported else ("fp32",)
    for p in PRECISIONS:
        if precision == p:
            return (p,)
    raise BackendError(f"tensorrt precision must be one of {list(PRECISIONS)}, got {precision!r}")


def find_engine(manifest: NppManifest, gpu: GpuInfo, trt_version: str,
                precisions: tuple[Precision, ...]) -> EngineEntry | None:
    """The manifest's engine for this GPU (model and compute capability) and TensorRT version, in
    ``precisions`` order."""
    for p in precisions:
        for entry in manifest.engines:
            if (entry.gpu == gpu.name and entry.compute_capability == gpu.compute_capability
                    and entry.tensorrt_version == trt_version and entry.precision == p):
                return entry
    return None


def listed_engines(manifest: NppManifest) -> str:
    return "; ".join(e.describe() for e in manifest.engines) or "none"


@dataclass(frozen=True)
class ResolvedEngine:
    """The engine file to load and where it came from; ``reason`` is the log line's why."""

    path: Path
    precision: Precision
    profile: Profile
    source: EngineSource
    reason: str
    key: EngineKey | None = None  # set for cached / built engines (None: the artifact's own)


def resolve_engine(artifact: Artifact, gpu: GpuInfo, trt_version: str, precisions: tuple[Precision, ...],
                   cache: EngineCache, profile: Profile, build: EngineBuilder | None,
                   use_artifact: bool = True) -> ResolvedEngine:
    """Pick (and if needed build) the engine: artifact's prebuilt → local cache → build into the cache.

    ``build`` None disables building: a missing engine is then ``BackendUnavailableError``.
    Pure Python apart from ``build``: tested on CPU with a stand-in builder.
    """
    manifest = artifact.manifest
    entry = find_engine(manifest, gpu, trt_version, precisions) if use_artifact else None
    if entry is not None:
        path = artifact.file(entry)  # sha256 check: a replaced or truncated engine is refused
        return ResolvedEngine(
            path, entry.precision, Profile(entry.profile_min, entry.profile_opt, entry.profile_max), "artifact",
            f"prebuilt engine {entry.path} in the artifact matches {gpu.name} (sm {gpu.compute_capability}) / "
            f"TensorRT {trt_version}",
        )
    if use_artifact:
        why = (f"the artifact has no engine for {gpu.name} (sm {gpu.compute_capability}) / TensorRT {trt_version} / "
               f"{'|'.join(precisions)} "
               f"(it has: {listed_engines(manifest)})")
    else:
        why = "the artifact's prebuilt engine does not load here"
    keys = [EngineKey.for_gpu(gpu, trt_version, p, profile, manifest.onnx.sha256) for p in precisions]
    misses = []
    for key in keys:
        found = cache.lookup(key)
        if found.path is not None:
            return ResolvedEngine(found.path, key.precision, profile, "cache", f"{why}; using {found.reason}", key)
        misses.append(found.reason)
    if build is None:
        raise BackendUnavailableError(
            f"{why}, none is cached in {cache.directory}, and building engines is disabled "
            "(build=False); allow the build or prebuild one on this GPU with "
            "`python -m training.export.tensorrt --artifact DIR`"
        )
    key = keys[0]
    onnx_path = artifact.file(manifest.onnx)  # sha256 check before compiling it

    def announce(lookup: CacheLookup) -> None:
        log.info("tensorrt: building a %s engine from %s on %s (sm %s, TensorRT %s) into %s, once per GPU "
                 "model / TensorRT version / ONNX (seconds to minutes): %s; %s", key.precision, onnx_path.name,
                 gpu.name, gpu.compute_capability, trt_version, cache.directory, why, lookup.reason)

    path, lookup = cache.get_or_build(key, lambda: build(onnx_path, key.precision, profile), announce)
    if lookup.path is not None:  # another process built it while we waited for the lock
        return ResolvedEngine(path, key.precision, profile, "cache", f"{why}; using {lookup.reason}", key)
    return ResolvedEngine(path, key.precision, profile, "built",
                          f"{why}; built {path.name} from {onnx_path.name} and cached it in {cache.directory}", key)


class TensorRTBackend(BaseBackend):
    """Options: ``precision`` ('fp16' | 'fp32'; default: fp16 if available, else fp32), ``device``
    (CUDA index), ``cache_dir`` (engine cache), ``build`` (False: only use prebuilt / cached
    engines), ``profile`` (shapes for engines built here; default ``Profile()``: up to 4×1088×1920),
    ``workspace_gib`` (builder workspace)."""

    name = "tensorrt"

    def __init__(self, artifact: Artifact, precision: str | None = None, device: int = 0,
                 cache_dir: Path | str | None = None, build: bool = True, profile: Profile | None = None,
                 workspace_gib: float = 4.0) -> None:
        super().__init__(artifact.manifest, artifact.directory)
        trt = import_tensorrt()
        self.cudart = import_cudart()
        self.device_index = device
        # one execution context, stream and set of device buffers serve every call: the lock makes
        # calls from several threads (the edge runs the NPP in a thread pool) take turns
        self._lock = threading.Lock()
        check(self.cudart.cudaSetDevice(device), "cudaSetDevice")
        self.gpu = detect_gpu(device)
        self.trt_version = str(trt.__version__)
        self.cache = EngineCache(Path(cache_dir) if cache_dir is not None else te.default_cache_dir())
        precisions = wanted_precisions(precision, te.supports_fp16_flag(trt))

        def builder(onnx_path: Path, p: Precision, prof: Profile) -> bytes:
            return te.build_serialized_engine(onnx_path, p, prof, workspace_gib)

        def resolve(use_artifact: bool = True) -> ResolvedEngine:
            return resolve_engine(artifact, self.gpu, self.trt_version, precisions, self.cache,
                                  profile or Profile(), builder if build else None, use_artifact)

        with _backend_errors():
            self.resolved = resolve()
            try:
                loaded = te.deserialize_engine(self.resolved.path.read_bytes(), self.resolved.path)
            except te.EngineError as exc:
                if not build or self.resolved.source == "built":
                    raise
                # A cached engine that no longer loads (corrupted, or a driver update changed what
                # the GPU accepts) or a prebuilt one for this GPU name that this device rejects:
                # build a fresh one rather than fail.
                log.warning("tensorrt: %s engine %s does not load (%s); building a new one",
                            self.resolved.source, self.resolved.path, exc)
                if self.resolved.key is not None:
                    self.cache.evict(self.resolved.key)
                self.resolved = resolve(use_artifact=self.resolved.source != "artifact")
                loaded = te.deserialize_engine(self.resolved.path.read_bytes(), self.resolved.path)
        self.runtime, self.engine = loaded.runtime, loaded.engine
        path = self.resolved.path
        self.context = self.engine.create_execution_context()
        self.stream = check(self.cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        expected = set(self.manifest.input_names() + self.manifest.output_names())
        if set(self.names) != expected:
            raise BackendError(f"{path} has I/O tensors {self.names}, the manifest says {sorted(expected)}")
        self.buffers = {n: DeviceBuffer() for n in self.names}
        prof = self.resolved.profile
        log.info("tensorrt: %s (%s, %s engine) on %s (sm %s), TensorRT %s, profile %s..%s: %s", path.name,
                 self.resolved.precision, self.resolved.source, self.gpu.name, self.gpu.compute_capability,
                 self.trt_version, prof.min, prof.max, self.resolved.reason)

    def _check_profile(self, shape: tuple[int, ...]) -> None:
        prof = self.resolved.profile
        if not prof.covers(shape):
            raise InputError(f"input {shape} is outside the engine's profile {prof.min}..{prof.max}")

    def _infer(self, batch: np.ndarray, cond: float | None) -> np.ndarray:
        self._check_profile(tuple(batch.shape))
        with self._lock:
            # the current CUDA device is per host thread: set it in the thread that runs this call
            check(self.cudart.cudaSetDevice(self.device_index), "cudaSetDevice")
            return self._infer_locked(batch, cond)

    def _infer_locked(self, batch: np.ndarray, cond: float | None) -> np.ndarray:
        cudart, ctx = self.cudart, self.context
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        feeds = {"image": batch}
        if self.manifest.quantization_adaptive:
            feeds[self.manifest.conditioning.input_name or "cond"] = cond_array(cond, batch.shape[0])
        for name, array in feeds.items():
            ctx.set_input_shape(name, tuple(array.shape))
            ptr = self.buffers[name].ensure(array.nbytes)
            check(cudart.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, h2d, self.stream), "H2D copy")
            ctx.set_tensor_address(name, ptr)
        out_name = self.manifest.outputs[0].name
        out = np.empty(tuple(ctx.get_tensor_shape(out_name)), dtype=np.float32)
        out_ptr = self.buffers[out_name].ensure(out.nbytes)
        ctx.set_tensor_address(out_name, out_ptr)
        if not ctx.execute_async_v3(int(self.stream)):
            raise BackendError("TensorRT execute_async_v3 failed")
        check(cudart.cudaMemcpyAsync(out.ctypes.data, out_ptr, out.nbytes, d2h, self.stream), "D2H copy")
        check(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return out

    def close(self) -> None:
        with self._lock:
            check(self.cudart.cudaSetDevice(self.device_index), "cudaSetDevice")
            for buf in self.buffers.values():
                buf.free()
            if getattr(self, "stream", None) is not None:
                self.cudart.cudaStreamDestroy(self.stream)
                self.stream = None

    def describe(self) -> dict[str, object]:
        r = self.resolved
        return {**super().describe(), "gpu": self.gpu.name, "compute_capability": self.gpu.compute_capability,
                "precision": r.precision, "tensorrt": self.trt_version, "engine": str(r.path),
                "engine_source": r.source, "profile_min": r.profile.min, "profile_max": r.profile.max}
