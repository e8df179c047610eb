"""ONNX Runtime backend: CUDA execution provider when present, else CPU."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from edge.backends.base import BaseBackend, cond_array
from edge.backends.errors import BackendUnavailableError, MissingDependencyError
from edge.backends.loader import Artifact
from shared.manifest import ManifestMismatchError

log = logging.getLogger("edge.backends")


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", "edge", "onnxruntime") from exc
    return onnxruntime


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads share an FPU: no gain for convs)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
        if cores:
            return max(1, min(cores, len(os.sched_getaffinity(0))))
    except ImportError:
        pass
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class OnnxRuntimeBackend(BaseBackend):
    name = "onnxruntime"

    def __init__(self, artifact: Artifact, device: str = "auto", threads: int | None = None) -> None:
        super().__init__(artifact.manifest, artifact.directory)
        ort = import_onnxruntime()
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise BackendUnavailableError(
                f"onnxruntime has no CUDAExecutionProvider here (providers: {available}); "
                "install onnxruntime-gpu on a CUDA machine"
            )
        use_cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One conv graph, no parallel branches worth scheduling: sequential, all cores inside ops.
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.threads = threads or physical_cores()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        model = artifact.file(artifact.manifest.onnx)
        self.session = ort.InferenceSession(str(model), options, providers=providers)
        self.providers = self.session.get_providers()
        got = [i.name for i in self.session.get_inputs()]
        if got != self.manifest.input_names():
            raise ManifestMismatchError(
                f"{model} takes inputs {got}, the manifest says {self.manifest.input_names()}"
            )
        outs = [o.name for o in self.session.get_outputs()]
        if outs != self.manifest.output_names():
            raise ManifestMismatchError(
                f"{model} gives outputs {outs}, the manifest says {self.manifest.output_names()}"
            )
        self.device = "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"
        log.info("onnxruntime: %s with providers %s, %d intra-op threads", model.name, self.providers, self.threads)

    def _infer(self, batch: np.ndarray, cond: float | None) -> np.ndarray:
        feeds = {"image": batch}
        if self.manifest.quantization_adaptive:
            feeds[self.manifest.conditioning.input_name or "cond"] = cond_array(cond, batch.shape[0])
        return self.session.run([self.manifest.outputs[0].name], feeds)[0]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "providers": self.providers, "intra_op_threads": self.threads}
