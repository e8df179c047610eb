"""Export the NPP: ONNX + TorchScript + manifest (``artifact``), TensorRT engines (``tensorrt``)."""

from training.export.artifact import ExportOptions, export_artifact
from training.export.errors import CheckpointError, ExportError, ParityError, TensorRTUnavailableError

__all__ = [
    "CheckpointError",
    "ExportError",
    "ExportOptions",
    "ParityError",
    "TensorRTUnavailableError",
    "export_artifact",
]
