"""The summarise stage: per-image results and a point's summary from its encoded images and task
records, written as ``points/<id>.json``; the sweep's ``sweep.json``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.encode import EncodedImage
from evaluation.plan import Point
from shared.atomic import atomic_write_json
from shared.metrics.image import PSNR_IDENTICAL_DB, mean_psnr
from shared.metrics.rate import bits_per_pixel

RESULT_FORMAT = "prepicm.sweep/2"
POINT_FORMAT = "prepicm.sweep.point/2"


def sanitize(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null; numpy scalars as Python numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sanitize(v) for v in obj]
    if isinstance(obj, np.generic):
        return sanitize(obj.item())
    return obj


def point_summary(point: Point, images: Sequence[EncodedImage], task_metrics: dict[str, float],
                  seconds: float) -> dict[str, Any]:
    bits = [e.bits for e in images]
    pixels = [e.pixels for e in images]
    return {
        "id": point.id, "codec": point.codec, "options": point.options, "settings": point.settings,
        "quality": point.quality, "quality_name": point.quality_name, "preprocessing": point.preprocessor_id,
        "decoder": point.decoder_id, "n_images": len(images),
        "bpp": bits_per_pixel(bits, pixels),
        "bpp_mean_per_image": float(np.mean(np.asarray(bits, float) / np.asarray(pixels, float))),
        "psnr": mean_psnr(e.psnr for e in images),
        "n_identical": int(sum(e.psnr >= PSNR_IDENTICAL_DB for e in images)),
        "msssim": float(np.mean([e.msssim for e in images])),
        "msssim_min_scales": int(min(e.msssim_scales for e in images)),
        **task_metrics,
        "encoded": int(sum(e.encoded for e in images)),
        "cache_hits": int(sum(not e.encoded for e in images)),
        "seconds": seconds,
    }


def write_point(out: Path, point: Point, fingerprint: str, summary: dict[str, Any], ids: Sequence[str],
                images: Sequence[EncodedImage], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    per_image = [{"id": i, "bits": e.bits, "pixels": e.pixels, "psnr": e.psnr, "msssim": e.msssim, **r}
                 for i, e, r in zip(ids, images, records, strict=True)]
    clean: dict[str, Any] = sanitize(summary)
    atomic_write_json(out / "points" / f"{point.id}.json",
                      sanitize({"format": POINT_FORMAT, "fingerprint": fingerprint, "summary": clean,
                                "images": per_image}))
    return clean


def write_sweep(out: Path, header: dict[str, Any], points: Sequence[Point],
                summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    summary = {"format": RESULT_FORMAT, **header,
               "points": [summaries[p.id] for p in points if p.id in summaries]}
    atomic_write_json(out / "sweep.json", sanitize(summary), indent=1)
    return summary
