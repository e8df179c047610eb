"""An exported NPP as an evaluation preprocessor, so `prepicm eval --preprocessing ARTIFACT_DIR`
scores the network the edge would run, through the same backends.

`shared.evaluation` finds this loader through the ``prepicm.artifact_loaders`` entry point
(manifest ``"model": "npp"``) and never imports `edge` itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge.backends import NppBackend, create_backend

BACKEND_ENV = "PREPICM_NPP_BACKEND"


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


def load_npp_preprocessor(directory: Path) -> NppPreprocessor:
    """Open the artifact with the backend named by ``$PREPICM_NPP_BACKEND`` (default ``auto``)."""
    return NppPreprocessor(create_backend(os.environ.get(BACKEND_ENV, "auto"), directory))
