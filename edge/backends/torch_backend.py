"""PyTorch backend: the exported TorchScript, on CPU or CUDA (optionally FP16). No training code."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from edge.backends.base import BaseBackend
from edge.backends.errors import BackendError, BackendUnavailableError, MissingDependencyError
from edge.backends.loader import Artifact

log = logging.getLogger("edge.backends")


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "torch") from exc
    return torch


class TorchBackend(BaseBackend):
    name = "torch"

    def __init__(self, artifact: Artifact, device: str = "auto", fp16: bool = False,
                 threads: int | None = None) -> None:
        super().__init__(artifact.manifest, artifact.directory)
        torch = import_torch()
        self.torch = torch
        if artifact.manifest.torchscript is None:
            raise BackendError(f"{artifact.directory}: the manifest lists no TorchScript file")
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("torch backend: device 'cuda' requested but CUDA is not available")
        # an explicit device index: a bare "cuda" means the calling thread's current device, and the
        # edge calls run() from pool threads (torch modules are safe to call from several threads)
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        self.device = f"cuda:{torch.cuda.current_device()}" if use_cuda else "cpu"
        if fp16 and not self.device.startswith("cuda"):
            raise BackendUnavailableError("torch backend: fp16 needs CUDA (CPU half convs are slow or missing)")
        self.fp16 = fp16
        if threads:
            torch.set_num_threads(threads)
        path = artifact.file(artifact.manifest.torchscript)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=self.device)
        module.eval()
        self.module = module.half() if fp16 else module
        log.info("torch: %s on %s%s", path.name, self.device, " fp16" if fp16 else "")

    def _infer(self, batch: np.ndarray, cond: float | None) -> np.ndarray:
        torch = self.torch
        dtype = torch.float16 if self.fp16 else torch.float32
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, dtype)
            c = torch.full((batch.shape[0], 1), 0.0 if cond is None else cond, device=self.device, dtype=dtype)
            out = self.module(x, c if self.manifest.quantization_adaptive else None)["x_bar"]
            return out.float().cpu().numpy()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "device": self.device, "fp16": self.fp16}
