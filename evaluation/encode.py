"""The encode stage of a sweep, run in the encoder processes: one image at one point →
bitstream (cached) → decoded image and its fidelity (cached), through :mod:`shared.pipeline`.

The worker reports the preprocessor id and decoder id it actually used, so the parent keys and
labels results by what ran, never by a guess. When the task output for the decoded image is
already cached (the parent tells the worker the task's identity digest), the image is not decoded
again unless its fidelity numbers are missing too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.cache import BitstreamCache, DecodedMetricsCache, OutputCache
from evaluation.config import SweepError
from evaluation.keys import bitstream_key, content_hash, decoded_key, outputs_key
from evaluation.preprocessors import PreprocessSpec, load_preprocessor
from shared.codecs import get_codec
from shared.imageio import read_rgb
from shared.metrics.image import capped_psnr, ms_ssim_detail
from shared.pipeline import EncodePipeline, decode, decoder_id


@dataclass
class EncodeJob:
    index: int  # image index in the dataset
    path: str
    codec: str
    options: dict[str, Any]
    quality: int
    preprocess: PreprocessSpec  # a string, or a picklable callable
    cache_root: str | None
    task_digest: str | None  # lets the worker skip decoding when the task output is cached


@dataclass
class EncodedImage:
    index: int
    bits: int
    pixels: int
    psnr: float  # capped at shared.metrics.image.PSNR_IDENTICAL_DB
    msssim: float
    msssim_scales: int
    encoded: bool  # False: the bitstream came from the cache
    decoded: np.ndarray | None  # None when the task output is cached and nothing needs the pixels
    bitstream_key: str
    decoded_key: str
    preprocessor_id: str
    decoder_id: str


_PIPELINES: dict[str, EncodePipeline] = {}


def _pipeline(job: EncodeJob) -> EncodePipeline:
    key = json.dumps([job.codec, job.options, repr(job.preprocess)], sort_keys=True, default=str)
    if key not in _PIPELINES:
        _PIPELINES[key] = EncodePipeline(get_codec(job.codec, **job.options), load_preprocessor(job.preprocess))
    return _PIPELINES[key]


def encode_image(job: EncodeJob) -> EncodedImage:
    """Load, preprocess, encode (or fetch), decode and score one image (module docstring)."""
    rgb = read_rgb(job.path)
    pipe = _pipeline(job)
    codec = pipe.codec
    pre_id = pipe.preprocessor_id or "none"
    root = Path(job.cache_root) if job.cache_root else None
    bkey = bitstream_key(content_hash(rgb), codec.name, codec.settings(), job.quality, pre_id)
    bitstreams = BitstreamCache(root)
    data = bitstreams.get(codec.name, bkey, codec.extension)
    encoded = data is None
    if data is None:
        data = pipe.encode(rgb, job.quality).bitstream
        bitstreams.put(codec.name, bkey, codec.extension, data,
                       {"codec": codec.name, "quality": job.quality, "preprocessor": pre_id})
    dec_id = decoder_id(codec.name)
    dkey = decoded_key(bkey, dec_id)
    metrics_cache = DecodedMetricsCache(root)
    metrics = metrics_cache.get(dkey)
    need_pixels = job.task_digest is None or not OutputCache(root).has(outputs_key(dkey, job.task_digest))
    image = None
    if metrics is None or need_pixels:
        image = decode(data, codec.name).image
        if image.shape != rgb.shape:
            raise SweepError(f"{job.path}: {codec.name} decoded {image.shape}, original is {rgb.shape}")
        if metrics is None:
            detail = ms_ssim_detail(rgb, image)
            metrics = {"psnr": capped_psnr(rgb, image), "msssim": detail.value, "msssim_scales": detail.scales}
            metrics_cache.put(dkey, metrics)
    return EncodedImage(job.index, len(data) * 8, rgb.shape[0] * rgb.shape[1], float(metrics["psnr"]),
                        float(metrics["msssim"]), int(metrics["msssim_scales"]), encoded,
                        image if need_pixels else None, bkey, dkey, pre_id, dec_id)
