"""Where the project's shared data, weights and caches live.

The shared folder (images, labels, detector weights) sits beside the repository as `../shared`;
`PREPICM_SHARED_DIR` points elsewhere (a mounted volume in a container, a CI cache). Every cache
the project writes (evaluation bitstreams and outputs, TensorRT engines) lives under one root,
:func:`cache_root`. The environment is read through :mod:`shared.runtime` only.
"""

from __future__ import annotations

from pathlib import Path

from shared.runtime import RuntimeSettings, current_runtime


def repo_root() -> Path:
    """The repository root: the folder that holds the top-level `shared` package."""
    return Path(__file__).resolve().parents[1]


#: the NPP the project ships (exported by ``training.export``; see docs/training.md for how it was trained)
SHIPPED_NPP = "npp-bpg-efficientnet_lite0"


def shipped_npp_dir() -> Path:
    """The committed NPP artifact (manifest.json + ONNX + TorchScript) under ``<repo>/models``."""
    return repo_root() / "models" / SHIPPED_NPP


def shared_data_dir(settings: RuntimeSettings | None = None) -> Path:
    """The shared data/weights folder: `$PREPICM_SHARED_DIR`, else `<repo root>/../shared`."""
    s = settings or current_runtime()
    return s.shared_dir if s.shared_dir else (repo_root() / ".." / "shared").resolve()


def shared_weights_dir(settings: RuntimeSettings | None = None) -> Path:
    """`<shared>/weights`, where downloaded-once detector weights are kept."""
    return shared_data_dir(settings) / "weights"


def cache_root(settings: RuntimeSettings | None = None) -> Path:
    """`$PREPICM_CACHE_DIR`, else `$XDG_CACHE_HOME/prepicm`, else `~/.cache/prepicm`."""
    s = settings or current_runtime()
    if s.cache_dir:
        return s.cache_dir
    base = s.xdg_cache_home if s.xdg_cache_home else Path.home() / ".cache"
    return base / "prepicm"


def cache_dir(kind: str, settings: RuntimeSettings | None = None) -> Path:
    """One cache's folder under :func:`cache_root` (``eval``, ``engines``); the engine cache may
    be moved on its own with `$PREPICM_ENGINE_CACHE`."""
    s = settings or current_runtime()
    if kind == "engines" and s.engine_cache_dir:
        return s.engine_cache_dir
    return cache_root(s) / kind
