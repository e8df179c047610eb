"""On-disk cache of encoded images, keyed by what determines the bytes.

Key = sha256 of: the original image's pixel content (shape + RGB bytes), the codec name, the
codec's ``settings()`` (encoder version, preset, subsampling, ...), the quality, and the
preprocessing id. A hit returns the exact file bytes plus the fidelity numbers computed when it
was written, so a warm sweep only decodes. Files are written atomically (temp file + rename), so
concurrent workers and interrupted runs never leave a half-written entry.

Layout: ``<root>/<codec>/<key[:2]>/<key><extension>`` and ``<key>.json`` beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CACHE_DIR_ENV = "PREPICM_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$PREPICM_CACHE_DIR``, else ``cache/`` under the repository root."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from shared.paths import repo_root

    return repo_root() / "cache"


def content_hash(image: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(repr((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def encode_key(
    image_hash: str, codec: str, settings: dict[str, Any], quality: int, preprocessing: str
) -> str:
    payload = json.dumps(
        {"image": image_hash, "codec": codec, "settings": settings, "quality": int(quality),
         "preprocessing": preprocessing},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results and caches are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any, indent: int | None = None) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=indent, allow_nan=False).encode())


class EncodeCache:
    """Encoded bitstreams and their fidelity numbers; ``root=None`` disables caching."""

    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root)

    def _paths(self, codec: str, key: str, extension: str) -> tuple[Path, Path]:
        assert self.root is not None
        folder = self.root / codec / key[:2]
        return folder / f"{key}{extension}", folder / f"{key}.json"

    def get(self, codec: str, key: str, extension: str) -> tuple[bytes, dict[str, Any]] | None:
        if self.root is None:
            return None
        data_path, meta_path = self._paths(codec, key, extension)
        # The metadata is written last, so its presence means the entry is complete.
        if not meta_path.is_file() or not data_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            data = data_path.read_bytes()
        except (OSError, json.JSONDecodeError):
            return None
        if meta.get("bytes") != len(data):
            return None
        return data, meta

    def put(self, codec: str, key: str, extension: str, data: bytes, meta: dict[str, Any]) -> None:
        if self.root is None:
            return
        data_path, meta_path = self._paths(codec, key, extension)
        atomic_write_bytes(data_path, data)
        atomic_write_json(meta_path, {**meta, "bytes": len(data)})


class OutputCache:
    """Task outputs per decoded image, keyed by the encode key and the model's identity.

    The outputs are a pure function of the bits and the model, so a re-run of a sweep with a
    warm cache needs no inference at all. Entries are pickles written by this project into the
    user's own cache folder (never read from elsewhere); ``root=None`` disables the cache.
    """

    def __init__(self, root: Path | None, model_id: str) -> None:
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:16]
        self.root = None if root is None else Path(root) / "outputs" / digest

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> Any | None:
        if self.root is None:
            return None
        try:
            return pickle.loads(self._path(key).read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            return None

    def put(self, key: str, output: Any) -> None:
        if self.root is not None:
            atomic_write_bytes(self._path(key), pickle.dumps(output, protocol=pickle.HIGHEST_PROTOCOL))
