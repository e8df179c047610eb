"""TensorRT backend: a prebuilt engine (from ``training.export.tensorrt``) matching this GPU and
TensorRT version; device buffers and a CUDA stream via cuda-python; dynamic shapes per call."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge.backends.base import BaseBackend, cond_array
from edge.backends.cuda_runtime import DeviceBuffer, check, gpu_name, import_cudart
from edge.backends.errors import BackendError, BackendUnavailableError, InputError, MissingDependencyError
from edge.backends.loader import Artifact
from shared.manifest import EngineEntry, NppManifest

log = logging.getLogger("edge.backends")


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise MissingDependencyError("tensorrt", "tensorrt", "tensorrt") from exc
    return tensorrt


def find_engine(manifest: NppManifest, gpu: str, trt_version: str, precision: str | None) -> EngineEntry:
    """The manifest's engine for this GPU model and TensorRT version (fp16 preferred)."""
    wanted = [precision] if precision else ["fp16", "fp32"]
    for p in wanted:
        for entry in manifest.engines:
            if entry.gpu == gpu and entry.tensorrt_version == trt_version and entry.precision == p:
                return entry
    have = [f"{e.gpu} / TensorRT {e.tensorrt_version} / {e.precision}" for e in manifest.engines] or ["none"]
    raise BackendUnavailableError(
        f"no TensorRT engine for {gpu} / TensorRT {trt_version} / {'/'.join(wanted)} in the artifact "
        f"(has: {'; '.join(have)}); build one on this machine with "
        "`python -m training.export.tensorrt --artifact DIR`"
    )


class TensorRTBackend(BaseBackend):
    name = "tensorrt"

    def __init__(self, artifact: Artifact, precision: str | None = None, device: int = 0) -> None:
        super().__init__(artifact.manifest, artifact.directory)
        trt = import_tensorrt()
        self.cudart = import_cudart()
        check(self.cudart.cudaSetDevice(device), "cudaSetDevice")
        self.gpu = gpu_name(device)
        self.entry = find_engine(artifact.manifest, self.gpu, trt.__version__, precision)
        path = artifact.file(self.entry)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self._logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialize {path}")
        self.context = self.engine.create_execution_context()
        self.stream = check(self.cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        expected = set(self.manifest.input_names() + self.manifest.output_names())
        if set(self.names) != expected:
            raise BackendError(f"{path} has I/O tensors {self.names}, the manifest says {sorted(expected)}")
        self.buffers = {n: DeviceBuffer() for n in self.names}
        log.info("tensorrt: %s (%s) on %s, profile %s..%s", path.name, self.entry.precision, self.gpu,
                 self.entry.profile_min, self.entry.profile_max)

    def _check_profile(self, shape: tuple[int, ...]) -> None:
        lo, hi = self.entry.profile_min, self.entry.profile_max
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            raise InputError(f"input {shape} is outside the engine's profile {lo}..{hi}")

    def _infer(self, batch: np.ndarray, cond: float | None) -> np.ndarray:
        cudart, ctx = self.cudart, self.context
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check_profile(tuple(batch.shape))
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
        for buf in self.buffers.values():
            buf.free()
        if getattr(self, "stream", None) is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "gpu": self.gpu, "precision": self.entry.precision,
                "tensorrt": self.entry.tensorrt_version, "profile_max": self.entry.profile_max}
