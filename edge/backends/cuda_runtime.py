"""The few CUDA runtime calls the TensorRT backend needs, through cuda-python (lazily imported)."""

from __future__ import annotations

from typing import Any

from edge.backends.errors import BackendError, BackendUnavailableError, MissingDependencyError


def import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:  # cuda-python < 12.6 layout
            from cuda import cudart
        except ImportError as exc:
            raise MissingDependencyError("cuda-python", "tensorrt", "tensorrt") from exc
    return cudart


def check(result: Any, what: str) -> Any:
    """cuda-python returns (error, *values); raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    cudart = import_cudart()
    if err != cudart.cudaError_t.cudaSuccess:
        raise BackendError(f"CUDA {what} failed: {err}")
    return values[0] if len(values) == 1 else tuple(values)


def gpu_name(device: int = 0) -> str:
    """The GPU's marketing name (the part of a TensorRT engine's cache key that names hardware)."""
    cudart = import_cudart()
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count == 0:
        raise BackendUnavailableError("no CUDA GPU is visible (cudaGetDeviceCount found none)")
    props = check(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name
    return (name.decode() if isinstance(name, bytes) else str(name)).rstrip("\x00").strip()


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
