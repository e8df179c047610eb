"""The few CUDA runtime calls the TensorRT backend needs, through cuda-python (lazily imported by
``shared.tensorrt_engine``, which also identifies the GPU for engine cache keys)."""

from __future__ import annotations

from typing import Any

from edge.backends.errors import BackendError, BackendUnavailableError, MissingDependencyError
from shared import tensorrt_engine as te


def import_cudart() -> Any:
    try:
        return te.import_cudart()
    except te.TensorRTUnavailableError as exc:
        raise MissingDependencyError("cuda-python", "tensorrt", "tensorrt") from exc


def check(result: Any, what: str) -> Any:
    """cuda-python returns (error, *values); raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    cudart = import_cudart()
    if err != cudart.cudaError_t.cudaSuccess:
        raise BackendError(f"CUDA {what} failed: {err}")
    return values[0] if len(values) == 1 else tuple(values)


def detect_gpu(device: int = 0) -> te.GpuInfo:
    """Name and compute capability of the GPU (the hardware part of a TensorRT engine's key)."""
    import_cudart()  # a missing cuda-python is a missing dependency, named as such
    try:
        return te.detect_gpu(device)
    except te.TensorRTUnavailableError as exc:
        raise BackendUnavailableError(str(exc)) from exc


class DeviceBuffer:
    """A grow-only device allocation (reallocated only when a larger input arrives)."""

    def __init__(self) -> None:
        self.ptr = 0
        self.nbytes = 0

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            cudart = import_cudart()
            if self.ptr:
                check(cudart.cudaFree(self.ptr), "cudaFree")
            self.ptr = int(check(cudart.cudaMalloc(nbytes), "cudaMalloc"))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            check(import_cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr, self.nbytes = 0, 0
