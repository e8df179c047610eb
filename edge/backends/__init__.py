"""NPP inference backends for the edge: TensorRT, ONNX Runtime, PyTorch (TorchScript), auto.

>>> from edge.backends import create_backend
>>> npp = create_backend("auto", "artifacts/npp-paper_qa", codec="bpg", quality=32)
>>> out = npp.run(frame_uint8_hwc, npp.conditioning_for("bpg", 32))   # → uint8 HWC
"""

from edge.backends.base import BaseBackend, NppBackend
from edge.backends.errors import BackendError, BackendUnavailableError, InputError, MissingDependencyError
from edge.backends.loader import Artifact, UntrainedArtifactError, load_artifact
from edge.backends.registry import BACKENDS, create_backend

__all__ = [
    "BACKENDS",
    "Artifact",
    "BackendError",
    "BackendUnavailableError",
    "BaseBackend",
    "InputError",
    "MissingDependencyError",
    "NppBackend",
    "UntrainedArtifactError",
    "create_backend",
    "load_artifact",
]
