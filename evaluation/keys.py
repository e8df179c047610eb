"""Cache keys and result ids: each keyed by everything that determines the value, nothing else.

=====================  ===========================================================================
value                  key
=====================  ===========================================================================
bitstream              image content hash, codec name, ``codec.settings()`` (encoder options and
                       library versions), quality, preprocessor id (as reported by the process
                       that ran it)
decoded-image metrics  bitstream key + ``codec.decoder_id()``
task output            decoded key + task identity (task name, kind, options read from the model
                       object, weights sha256, device type)
pristine output        image content hash + task identity
finished point         point id (readable prefix + hash of codec, options, settings, preprocessor,
                       quality) and a fingerprint of dataset identity, task identity, decoder id
=====================  ===========================================================================

Dataset identity covers the image ids, the labels and the annotation file's content: it decides
the scores, never a cached bitstream or task output.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from shared.manifest import sha256_file


class TaskIdentityError(ValueError):
    """A task model does not expose what its outputs depend on."""


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def content_hash(image: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(repr((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def bitstream_key(image_hash: str, codec: str, settings: dict[str, Any], quality: int, preprocessor_id: str) -> str:
    return digest({"image": image_hash, "codec": codec, "settings": settings, "quality": int(quality),
                   "preprocessor": preprocessor_id})


def decoded_key(bitstream: str, decoder_id: str) -> str:
    return digest({"bitstream": bitstream, "decoder": decoder_id})


def outputs_key(decoded: str, task_digest: str) -> str:
    return digest({"decoded": decoded, "task": task_digest})


def pristine_key(image_hash: str, task_digest: str) -> str:
    return digest({"pristine": image_hash, "task": task_digest})


_MODEL_ARGS = {"self", "name", "weights", "device", "random_init"}


def _option_value(value: Any) -> Any:
    # a file option (a model config) counts by its bytes, never by where it lives
    if isinstance(value, Path):
        return "sha256:" + sha256_file(value) if value.is_file() else value.name
    if isinstance(value, tuple | list):
        return [_option_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def task_options(model: Any) -> dict[str, Any]:
    """The options a task model was built with, read from the object (constructor parameters
    stored under the same name), so a model passed in directly keys its outputs correctly."""
    try:
        params = inspect.signature(type(model).__init__).parameters
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for name, p in params.items():
        if name in _MODEL_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(model, name):
            raise TaskIdentityError(f"task model {type(model).__name__} does not keep its option {name!r} as an "
                                    "attribute; its cached outputs could not be told apart from another setting's")
        out[name] = _option_value(getattr(model, name))
    return out


def task_identity(task: str, model: Any) -> dict[str, Any]:
    """What a task output depends on besides the pixels."""
    device = getattr(model, "device", "cpu")
    return {"task": task, "kind": getattr(model, "kind", "?"), "options": task_options(model),
            "weights": getattr(model, "weights_identity", "unknown"), "device": getattr(device, "type", str(device))}


def dataset_identity(dataset: Any) -> dict[str, Any]:
    """What the scores depend on besides the task outputs: which images, their labels, the
    annotation file's content."""
    ids = list(dataset.ids)
    ident: dict[str, Any] = {"ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
                             "ground_truth": dataset.ground_truth}
    if dataset.ground_truth == "labels":
        ident["labels_sha256"] = digest([[s.id, int(s.target)] for s in dataset])
    ann = getattr(dataset, "annotations_path", None)
    if ann is not None and Path(ann).is_file():
        ident["annotations_sha256"] = sha256_file(Path(ann))
    return ident


def point_id(codec: str, options: dict[str, Any], settings: dict[str, Any], preprocessor_id: str, quality: int) -> str:
    """``<codec>-<preprocessor, readable, ≤ 32 chars>-q<quality>-<12 hex of everything>``: the
    readable part may be truncated, the hash suffix keeps ids distinct."""
    h = digest({"codec": codec, "options": options, "settings": settings, "preprocessor": preprocessor_id,
                "quality": int(quality)})[:12]
    pre = re.sub(r"[^A-Za-z0-9_.-]+", "_", preprocessor_id)[:32]
    return f"{codec}-{pre}-q{int(quality)}-{h}"
