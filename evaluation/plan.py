"""The plan stage: the sweep's points (codec × options × preprocessing × quality), which of them
are already finished in the output folder, and the encode jobs of the rest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.config import SweepConfig, SweepError
from evaluation.encode import EncodeJob
from evaluation.keys import digest, point_id
from evaluation.preprocessors import PreprocessSpec
from shared.codecs import get_codec
from shared.pipeline import decoder_id


@dataclass(frozen=True)
class Point:
    codec: str
    options: dict[str, Any]
    settings: dict[str, Any]
    quality: int
    preprocess: PreprocessSpec
    preprocessor_id: str  # as reported by an encoder process
    decoder_id: str
    quality_name: str

    @property
    def id(self) -> str:
        return point_id(self.codec, self.options, self.settings, self.preprocessor_id, self.quality)

    def fingerprint(self, base: dict[str, Any]) -> str:
        """Changes whenever the point's numbers could: the data and model (``base``), the
        decoder, and what the id already names."""
        return digest({**base, "point": self.id, "decoder": self.decoder_id})


@dataclass
class Plan:
    points: list[Point]
    done: dict[str, dict[str, Any]]  # point id → summary of a finished point
    pending: list[Point]
    codec_settings: dict[str, dict[str, Any]]


def plan_sweep(config: SweepConfig, preprocessor_ids: list[str], out: Path, base: dict[str, Any]) -> Plan:
    """Enumerate the points (``preprocessor_ids`` parallel to ``config.preprocess``) and load the
    finished ones whose fingerprint still matches."""
    points: list[Point] = []
    codec_settings: dict[str, dict[str, Any]] = {}
    for spec in config.codecs:
        codec = get_codec(spec.name, **spec.options)
        settings = codec.settings()
        codec_settings[spec.name + ("" if not spec.options else " " + json.dumps(spec.options))] = settings
        for q in spec.qualities:
            codec.quality.check(q)
        for pre, pid in zip(config.preprocess, preprocessor_ids, strict=True):
            points.extend(Point(spec.name, dict(spec.options), settings, int(q), pre, pid, decoder_id(spec.name),
                                codec.quality.name) for q in spec.qualities)
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise SweepError("the sweep lists the same (codec, options, preprocessing, quality) point twice")
    done: dict[str, dict[str, Any]] = {}
    pending: list[Point] = []
    for p in points:
        rec = _read_point(out / "points" / f"{p.id}.json")
        if rec.get("fingerprint") == p.fingerprint(base):
            done[p.id] = rec["summary"]
        else:
            pending.append(p)
    return Plan(points, done, pending, codec_settings)


def _read_point(path: Path) -> dict[str, Any]:
    try:
        rec: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return rec


def encode_jobs(pending: list[Point], image_paths: list[str], cache_root: str | None,
                task_digest: str | None) -> list[EncodeJob]:
    """One job per (pending point, image), point after point."""
    return [EncodeJob(i, path, p.codec, p.options, p.quality, p.preprocess, cache_root, task_digest)
            for p in pending for i, path in enumerate(image_paths)]
