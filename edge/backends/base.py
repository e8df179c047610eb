"""The one interface every NPP inference backend implements, and the array plumbing they share."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edge.backends.errors import InputError
from shared.conditioning import conditioning_value
from shared.manifest import NppManifest

log = logging.getLogger("edge.backends")


@runtime_checkable
class NppBackend(Protocol):
    """Runs an exported NPP.

    ``run(images, cond)``: ``images`` is NCHW float32 in [0,1] (returned as NCHW float32) or uint8
    HWC / NHWC RGB (returned as uint8 in the same layout, ready for a codec); ``cond`` is the
    normalised conditioning value (``conditioning_for``; ignored by single-QP networks).
    """

    name: str
    manifest: NppManifest

    def run(self, images: np.ndarray, cond: float | None = None) -> np.ndarray: ...

    def conditioning_for(self, codec: str, quality: float) -> float: ...

    def describe(self) -> dict[str, object]: ...


class BaseBackend:
    """Input normalisation, tiny-image padding and operating-point checks shared by backends."""

    name = "base"

    def __init__(self, manifest: NppManifest, directory: Path) -> None:
        self.manifest = manifest
        self.directory = directory

    # -- the public surface -----------------------------------------------------------------------

    def conditioning_for(self, codec: str, quality: float) -> float:
        """Check the operating point against the manifest and return the conditioning value."""
        self.manifest.check_operating_point(codec, quality)
        return conditioning_value(codec, quality)

    def run(self, images: np.ndarray, cond: float | None = None) -> np.ndarray:
        batch, restore = to_nchw_float(images)
        if self.manifest.quantization_adaptive:
            if cond is None:
                raise InputError(f"NPP {self.manifest.variant!r} is quantization-adaptive: pass cond")
            lo, hi = self.manifest.conditioning.value_range
            if not lo <= cond <= hi:
                raise InputError(f"cond {cond} is outside {lo}..{hi}")
        h, w = batch.shape[2:]
        batch = pad_small(batch, self.manifest.min_side)
        out = self._infer(np.ascontiguousarray(batch), cond)[:, :, :h, :w]
        return restore(out)

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "variant": self.manifest.variant,
                "trained": self.manifest.training.trained, "directory": str(self.directory)}

    def _infer(self, batch: np.ndarray, cond: float | None) -> np.ndarray:
        raise NotImplementedError


def to_nchw_float(images: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Return (N,3,H,W) float32 in [0,1] and a function mapping a result back to the input layout."""
    if not isinstance(images, np.ndarray):
        raise InputError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype == np.uint8:
        single = images.ndim == 3
        nhwc = images[None] if single else images
        if nhwc.ndim != 4 or nhwc.shape[-1] != 3:
            raise InputError(f"uint8 images must be HxWx3 or NxHxWx3 RGB, got shape {images.shape}")
        batch = nhwc.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)

        def back_uint8(out: np.ndarray) -> np.ndarray:
            u8 = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
            return np.ascontiguousarray(u8[0] if single else u8)

        return batch, back_uint8
    if images.dtype != np.float32 or images.ndim != 4 or images.shape[1] != 3:
        raise InputError(
            f"images must be NCHW float32 (N,3,H,W) in [0,1] or uint8 HWC RGB; got {images.dtype} {images.shape}"
        )
    return images, lambda out: out


def pad_small(batch: np.ndarray, min_side: int) -> np.ndarray:
    """Replicate-pad bottom/right to ``min_side``: exported graphs reflect-pad, which needs a side
    larger than the pad; the PyTorch model replicates for such tiny inputs, and so do we."""
    h, w = batch.shape[2:]
    ph, pw = max(0, min_side - h), max(0, min_side - w)
    if ph == 0 and pw == 0:
        return batch
    return np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")


def cond_array(cond: float | None, batch: int) -> np.ndarray:
    return np.full((batch, 1), 0.0 if cond is None else cond, dtype=np.float32)
