"""Image→image preprocessing in front of the codec: the protocol, its identity, built-ins.

A preprocessor is any callable ``f(rgb_uint8_HxWx3, codec_name, quality) -> rgb_uint8_HxWx3``.
Its identity (:func:`preprocessor_id`) goes into every cache key and result label, so it must
change whenever the output could:

- an object with a ``preprocessor_id`` attribute names itself (an exported NPP names its ONNX
  sha256 and the numerics that ran it, e.g. ``npp-nano_qa-<sha>-ort-cpu``; a built-in names its
  parameters, e.g. ``gaussian_blur_s1``);
- a plain Python function is named ``module.qualname`` plus a hash of its source code (or of
  its bytecode when the source is not available), so editing it invalidates its results.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.ndimage import gaussian_filter

from shared.registry import Registry


class PreprocessorError(ValueError):
    """A preprocessor cannot be loaded or returned something that is not an image of the input's size."""


@runtime_checkable
class Preprocessor(Protocol):
    def __call__(self, image: np.ndarray, codec: str, quality: int) -> np.ndarray: ...


class GaussianBlur:
    """A classical pre-filter baseline: Gaussian blur of σ pixels per channel (spends fewer bits
    on texture). Deterministic, quality-independent."""

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = float(sigma)
        self.preprocessor_id = f"gaussian_blur_s{self.sigma:g}"

    def __call__(self, image: np.ndarray, codec: str, quality: int) -> np.ndarray:
        x = gaussian_filter(image.astype(np.float32), sigma=(self.sigma, self.sigma, 0), mode="reflect")
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)


#: Built-in preprocessors by name (``prepicm eval --preprocess gaussian_blur``); factories, so
#: each use gets its own instance.
PREPROCESSORS: Registry[Callable[[], Preprocessor]] = Registry("preprocessor")
PREPROCESSORS.register("gaussian_blur", lambda: GaussianBlur(1.0))


def _code_digest(fn: Callable[..., object]) -> str:
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None) or getattr(type(fn).__call__, "__code__", None)
        text = code.co_code + repr(code.co_consts).encode() if code is not None else repr(fn).encode()
    return hashlib.sha256(text).hexdigest()[:12]


def preprocessor_id(pre: Preprocessor | None) -> str:
    """``none``, the object's own ``preprocessor_id``, or ``module.qualname-<source hash>``."""
    if pre is None:
        return "none"
    pid = getattr(pre, "preprocessor_id", None)
    if pid:
        return str(pid)
    target = pre if inspect.isfunction(pre) or inspect.ismethod(pre) else type(pre)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(pre).__qualname__)}"
    return f"{name}-{_code_digest(target)}"


def apply_preprocessor(pre: Preprocessor, image: np.ndarray, codec: str, quality: int) -> np.ndarray:
    """Run a preprocessor and check it returned an image of the same size (codecs need uint8 RGB)."""
    out = pre(image, codec, quality)
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != image.shape:
        raise PreprocessorError(
            f"preprocessor returned {type(out).__name__} {getattr(out, 'shape', '')} "
            f"{getattr(out, 'dtype', '')}; expected uint8 {image.shape}"
        )
    return np.ascontiguousarray(out)
