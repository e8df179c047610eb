"""Pluggable image→image preprocessing in front of the codec (an NPP, a filter, or nothing).

A preprocessor is any callable ``f(rgb_uint8_HxWx3, codec_name, quality) -> rgb_uint8_HxWx3``.
It may carry a ``preprocessor_id`` attribute (a string that changes whenever its output would:
weights hash, version); the id goes into cache keys and result names.

``load_preprocessor(spec)`` turns a string into one:

- ``"none"`` → ``None`` (the codec sees the original image);
- a name in :data:`PREPROCESSORS` (built-ins, e.g. ``"gaussian_blur"``);
- ``"package.module:function"`` → that callable, imported (a factory returning a preprocessor
  may be named instead: if the object has ``is_preprocessor_factory = True`` it is called with no
  arguments);
- a directory holding ``manifest.json`` (an exported NPP artifact): the manifest's
  ``"preprocessor_loader"`` (``"module:function"``) — or, if absent, a loader registered for its
  ``"kind"`` with :func:`register_artifact_loader` — is called with the directory and returns the
  preprocessor. ``shared`` never imports ``edge``: the edge package declares its NPP loader under
  the ``prepicm.artifact_loaders`` entry point (an exported NPP's manifest says ``"model": "npp"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.ndimage import gaussian_filter

from shared.registry import Registry


class PreprocessorError(ValueError):
    """A preprocessing spec cannot be loaded (unknown name, bad import path, bad artifact)."""


@runtime_checkable
class Preprocessor(Protocol):
    def __call__(self, image: np.ndarray, codec: str, quality: int) -> np.ndarray: ...


ArtifactLoader = Callable[[Path], Preprocessor]

PREPROCESSORS: Registry[Preprocessor] = Registry("preprocessor")
ARTIFACT_LOADERS: Registry[ArtifactLoader] = Registry("preprocessor artifact kind")


def register_artifact_loader(kind: str, loader: ArtifactLoader) -> None:
    ARTIFACT_LOADERS.register(kind, loader)


ENTRY_POINT_GROUP = "prepicm.artifact_loaders"


def _register_entry_point_loaders() -> None:
    """Loaders other packages declare under the ``prepicm.artifact_loaders`` entry point (the edge
    package's NPP loader): resolved lazily, so the dependency runs from them to us, not back."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in ARTIFACT_LOADERS:
            try:
                ARTIFACT_LOADERS.register(ep.name, ep.load())
            except ImportError as exc:
                raise PreprocessorError(f"artifact loader {ep.name!r} ({ep.value}) cannot be imported: {exc}") from exc


class GaussianBlur:
    """A classical pre-filter baseline: Gaussian blur of σ pixels per channel (spends fewer bits
    on texture). Deterministic, quality-independent."""

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = float(sigma)
        self.preprocessor_id = f"gaussian_blur_s{self.sigma:g}"

    def __call__(self, image: np.ndarray, codec: str, quality: int) -> np.ndarray:
        x = gaussian_filter(image.astype(np.float32), sigma=(self.sigma, self.sigma, 0), mode="reflect")
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)


PREPROCESSORS.register("gaussian_blur", GaussianBlur(1.0))


def _import_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PreprocessorError(f"preprocessor {spec!r} is not 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PreprocessorError(f"cannot import module {module_name!r} for preprocessor {spec!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PreprocessorError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _load_artifact(directory: Path) -> Preprocessor:
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise PreprocessorError(f"preprocessor artifact {directory}: no manifest.json found at {manifest_path}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise PreprocessorError(f"{manifest_path}: invalid JSON ({exc})") from exc
    loader_spec = manifest.get("preprocessor_loader")
    kind = manifest.get("kind") or manifest.get("model")  # exported NPPs say "model": "npp"
    _register_entry_point_loaders()
    if loader_spec:
        loader = _import_object(str(loader_spec))
    elif kind in ARTIFACT_LOADERS:
        loader = ARTIFACT_LOADERS.get(kind)
    else:
        known = ", ".join(ARTIFACT_LOADERS.names()) or "(none registered)"
        raise PreprocessorError(
            f"{manifest_path}: needs a \"preprocessor_loader\": \"module:function\" entry or a \"kind\" "
            f"with a registered loader (registered: {known}; an exported NPP needs the edge extra: "
            "pip install 'prepicm[edge]')"
        )
    pre = loader(directory)
    if not callable(pre):
        raise PreprocessorError(f"loader for {directory} returned {type(pre).__name__}, not a callable")
    if getattr(pre, "preprocessor_id", None) is None:
        digest = hashlib.sha256(manifest_path.read_bytes()).hexdigest()[:12]
        with contextlib.suppress(AttributeError):  # e.g. a function object with __slots__
            pre.preprocessor_id = f"{directory.name}-{digest}"
    return pre


def load_preprocessor(spec: str | Callable[..., np.ndarray] | None) -> Preprocessor | None:
    """Resolve a preprocessing spec (see module docstring); ``None``/``"none"`` → ``None``."""
    if spec is None:
        return None
    if callable(spec):
        return spec
    s = str(spec)
    if s.lower() == "none":
        return None
    if s in PREPROCESSORS:
        return PREPROCESSORS.get(s)
    path = Path(s)
    if path.is_dir():
        return _load_artifact(path)
    if ":" in s:
        obj = _import_object(s)
        if getattr(obj, "is_preprocessor_factory", False):
            obj = obj()
        if not callable(obj):
            raise PreprocessorError(f"preprocessor {s!r} is a {type(obj).__name__}, not a callable")
        return obj
    raise PreprocessorError(
        f"unknown preprocessor {s!r}: not 'none', not a registered name ({', '.join(PREPROCESSORS.names())}), "
        "not an artifact directory, not 'module:function'"
    )


def preprocessor_id(spec: str | Callable[..., np.ndarray] | None) -> str:
    """A stable id for cache keys and result names: 'none', the object's ``preprocessor_id``, the
    spec string, or ``module:qualname`` for a plain callable."""
    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return "none"
    obj = spec if callable(spec) else load_preprocessor(spec)
    pid = getattr(obj, "preprocessor_id", None)
    if pid:
        return str(pid)
    if isinstance(spec, str):
        return spec
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def apply_preprocessor(pre: Preprocessor, image: np.ndarray, codec: str, quality: int) -> np.ndarray:
    """Run a preprocessor and check it returned an image of the same size (codecs need uint8 RGB)."""
    out = pre(image, codec, quality)
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != image.shape:
        raise PreprocessorError(
            f"preprocessor returned {type(out).__name__} {getattr(out, 'shape', '')} "
            f"{getattr(out, 'dtype', '')}; expected uint8 {image.shape}"
        )
    return np.ascontiguousarray(out)
