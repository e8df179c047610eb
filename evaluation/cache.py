"""On-disk caches of the sweep, one per kind of value (keys: :mod:`evaluation.keys`).

Layout under the cache root: ``bitstreams/<codec>/<k[:2]>/<key><ext>`` (+ ``<key>.json``, written
last, so its presence means the entry is complete), ``decoded/<k[:2]>/<key>.json`` (PSNR, MS-SSIM
of the decoded image against the original), ``outputs/<k[:2]>/<key>.pkl`` (task outputs, pickles
written by this project into the user's own cache folder, never read from elsewhere). Writes are
atomic, so concurrent workers and interrupted runs never leave a half-written entry. A cache
built with ``root=None`` stores nothing.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from shared.atomic import atomic_write_bytes, atomic_write_json


class BitstreamCache:
    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root) / "bitstreams"

    def _paths(self, codec: str, key: str, extension: str) -> tuple[Path, Path]:
        assert self.root is not None
        folder = self.root / codec / key[:2]
        return folder / f"{key}{extension}", folder / f"{key}.json"

    def get(self, codec: str, key: str, extension: str) -> bytes | None:
        if self.root is None:
            return None
        data_path, meta_path = self._paths(codec, key, extension)
        try:
            meta = json.loads(meta_path.read_text())
            data = data_path.read_bytes()
        except (OSError, json.JSONDecodeError):
            return None
        return data if meta.get("bytes") == len(data) else None

    def put(self, codec: str, key: str, extension: str, data: bytes, meta: dict[str, Any]) -> None:
        if self.root is None:
            return
        data_path, meta_path = self._paths(codec, key, extension)
        atomic_write_bytes(data_path, data)
        atomic_write_json(meta_path, {**meta, "bytes": len(data)})


class DecodedMetricsCache:
    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root) / "decoded"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            value: dict[str, Any] = json.loads((self.root / key[:2] / f"{key}.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return value

    def put(self, key: str, metrics: dict[str, Any]) -> None:
        if self.root is not None:
            atomic_write_json(self.root / key[:2] / f"{key}.json", metrics)


class OutputCache:
    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root) / "outputs"

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.pkl"

    def has(self, key: str) -> bool:
        return self.root is not None and self._path(key).is_file()

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
