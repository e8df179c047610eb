"""An exported NPP as a preprocessor (:class:`shared.preprocess.Preprocessor`), so
`prepicm eval --preprocess ARTIFACT_DIR` scores the network the edge runs, through the same
backends (the evaluation application imports this module directly).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.backends import NppBackend, create_backend
from shared.runtime import RuntimeSettings, current_runtime


class NppPreprocessor:
    """``f(rgb, codec, quality) -> rgb``: the NPP at the conditioning of that codec operating point."""

    def __init__(self, backend: NppBackend) -> None:
        self.backend = backend
        m = backend.manifest
        state = "" if m.training.trained else "UNTRAINED-"
        # the id names the exact network and the numerics that ran it (FP16 TensorRT and FP32 ONNX
        # Runtime round some pixels differently): it goes into cache keys and result labels
        self.preprocessor_id = f"npp-{m.variant}-{state}{m.onnx.sha256[:12]}-{numerics(backend.describe())}"

    def __call__(self, image: np.ndarray, codec: str, quality: int) -> np.ndarray:
        cond = self.backend.conditioning_for(codec, quality)  # also refuses operating points it does not serve
        return self.backend.run(image, cond if self.backend.manifest.quantization_adaptive else None)


def numerics(info: dict[str, object]) -> str:
    """A short tag for how a backend computes: ``trt-fp16``, ``ort-cpu``, ``torch-cuda-fp16`` …"""
    backend = info.get("backend")
    if backend == "tensorrt":
        return f"trt-{info.get('precision')}"
    if backend == "onnxruntime":
        providers = info.get("providers")
        first = str(providers[0]) if isinstance(providers, list) and providers else ""
        return "ort-cuda" if first.startswith("CUDA") else "ort-cpu"
    if backend == "torch":
        return f"torch-{str(info.get('device')).split(':')[0]}{'-fp16' if info.get('fp16') else ''}"
    return str(backend)


def load_npp_preprocessor(directory: Path, settings: RuntimeSettings | None = None) -> NppPreprocessor:
    """Open the artifact with the backend the runtime settings name (``$PREPICM_NPP_BACKEND``,
    default ``auto``) and their thread counts for ONNX Runtime / torch."""
    s = settings or current_runtime()
    threads = None
    if s.npp_backend == "onnxruntime":
        threads = s.ort_intra_op_threads
    elif s.npp_backend == "torch":
        threads = s.torch_threads
    # "auto" and tensorrt take no thread count: pass it only to the backends that have one
    if threads:
        return NppPreprocessor(create_backend(s.npp_backend, directory, threads=threads))
    return NppPreprocessor(create_backend(s.npp_backend, directory))
