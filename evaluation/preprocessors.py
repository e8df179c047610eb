"""Preprocessing specs of a sweep (``--preprocess``) turned into preprocessors.

- ``"none"`` → no preprocessing;
- a built-in name (:data:`shared.preprocess.PREPROCESSORS`, e.g. ``gaussian_blur``);
- ``"shipped"`` → the NPP the project ships (:func:`shared.paths.shipped_npp_dir`);
- a directory holding an exported NPP (``manifest.json``): opened with the edge backends
  (:func:`edge.preprocessor.load_npp_preprocessor`), so the sweep scores what the edge runs;
- ``"package.module:function"``: that callable (an object with ``is_preprocessor_factory = True``
  is called first to build one);
- a callable (in-process use): itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shared.paths import shipped_npp_dir
from shared.preprocess import PREPROCESSORS, Preprocessor, PreprocessorError, preprocessor_id

SHIPPED = "shipped"

PreprocessSpec = str | Callable[..., np.ndarray] | None


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
    if not (directory / "manifest.json").is_file():
        raise PreprocessorError(f"preprocessor artifact {directory}: no manifest.json found")
    try:
        from edge.preprocessor import load_npp_preprocessor
    except ImportError as exc:
        raise PreprocessorError(f"an exported NPP needs the edge extra (pip install 'prepicm[edge]'): {exc}") from exc
    return load_npp_preprocessor(directory)


def load_preprocessor(spec: PreprocessSpec) -> Preprocessor | None:
    """Resolve a spec (module docstring); ``None``/``"none"`` → ``None``."""
    if spec is None:
        return None
    if callable(spec):
        return spec
    s = str(spec)
    if s.lower() == "none":
        return None
    if s in PREPROCESSORS:
        return PREPROCESSORS.get(s)()
    if s == SHIPPED:
        if not (shipped_npp_dir() / "manifest.json").is_file():
            raise PreprocessorError(f"'{SHIPPED}': no NPP artifact is committed at {shipped_npp_dir()}")
        return _load_artifact(shipped_npp_dir())
    if Path(s).is_dir():
        return _load_artifact(Path(s))
    if ":" in s:
        obj = _import_object(s)
        if getattr(obj, "is_preprocessor_factory", False):
            obj = obj()
        if not callable(obj):
            raise PreprocessorError(f"preprocessor {s!r} is a {type(obj).__name__}, not a callable")
        return obj
    raise PreprocessorError(
        f"unknown preprocessor {s!r}: not 'none' or '{SHIPPED}', not a built-in ({', '.join(PREPROCESSORS.names())}), "
        "not an artifact directory, not 'module:function'"
    )


def resolve_preprocessor_id(spec: PreprocessSpec) -> str:
    """The id of the preprocessor this spec loads *in the calling process* (run it in the
    process that will run the preprocessor: an NPP's id names the numerics that ran it)."""
    return preprocessor_id(load_preprocessor(spec))


def spec_label(spec: PreprocessSpec) -> str:
    """How a spec is written into a result's config (a callable by its id)."""
    return preprocessor_id(spec) if callable(spec) else str(spec)
