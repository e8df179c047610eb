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
        # the id names the exact network: it goes into cache keys and result labels
        self.preprocessor_id = f"npp-{m.variant}-{state}{m.onnx.sha256[:12]}"

    def __call__(self, image: np.ndarray, codec: str, quality: int) -> np.ndarray:
        cond = self.backend.conditioning_for(codec, quality)  # also refuses operating points it does not serve
        return self.backend.run(image, cond if self.backend.manifest.quantization_adaptive else None)


def load_npp_preprocessor(directory: Path) -> NppPreprocessor:
    """Open the artifact with the backend named by ``$PREPICM_NPP_BACKEND`` (default ``auto``)."""
    return NppPreprocessor(create_backend(os.environ.get(BACKEND_ENV, "auto"), directory))
