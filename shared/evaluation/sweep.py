"""Rate–accuracy sweeps: dataset × task × codec × quality × preprocessing.

For every point (codec, settings, preprocessing, quality) each image is loaded, optionally
preprocessed, encoded, decoded, scored for fidelity against the *original* image (PSNR,
MS-SSIM), and the decoded image goes through the task model. Per point the sweep records

- ``bpp`` = Σ file bits / Σ original pixels over the images (real file bytes × 8; also
  ``bpp_mean_per_image``), the task metrics (registry :mod:`shared.evaluation.registry`) and mean
  PSNR / MS-SSIM;
- per image: bits, PSNR, MS-SSIM and the task's per-image results (classification: predicted
  class, correct@1/@5, cross-entropy, KL from pristine, agreement; detection: the detections and
  the counts against the pristine detections), so two methods can be compared image by image.

The pristine prediction (the model on the original image) is computed once per sweep and stored
beside the points. Encoding runs in a process pool (``workers``, default 2) over images;
inference is batched in the main process while the workers encode ahead. Encoded files are
cached (:mod:`shared.evaluation.cache`), and every finished point is written atomically to
``<out>/points/<point id>.json`` — a rerun (after an interruption, or with more qualities)
loads finished points and only computes the rest.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from shared.evaluation.cache import (
    EncodeCache,
    OutputCache,
    atomic_write_json,
    content_hash,
    default_cache_dir,
    encode_key,
)
from shared.evaluation.image_metrics import ms_ssim_detail, psnr
from shared.evaluation.metrics import (
    Detections,
    coco_map,
    cross_entropy,
    f1_from_counts,
    kl_divergence,
    pseudo_counts,
    soft_distortion_from_counts,
    top1_agreement,
    topk_correct,
)
from shared.evaluation.preprocess import apply_preprocessor, load_preprocessor, preprocessor_id
from shared.evaluation.registry import metrics_for

RESULT_FORMAT = "prepicm.sweep/1"
POINT_FORMAT = "prepicm.sweep.point/1"


class SweepError(RuntimeError):
    """A sweep cannot run (bad config, image/codec mismatch, inconsistent resume data)."""


# ----------------------------------------------------------------------------- config


@dataclass
class CodecSpec:
    name: str
    qualities: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepConfig:
    dataset_kind: str
    dataset: str
    task: str
    codecs: list[CodecSpec]
    out: str
    limit: int | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    # "none", a registered name, "module:function", an artifact dir, or a callable (in-process use)
    preprocessing: list[Any] = field(default_factory=lambda: ["none"])
    cache_dir: str | None = None  # None → default_cache_dir(); "" → no cache
    workers: int = 2
    batch_size: int = 32
    progress: bool = True
    mp_context: str = "spawn"
    # torch threads for inference in the main process; None = CPUs left over by the encoders
    # (≥ 1). Oversubscribing the cores (2 encoders + 2 torch threads on 2 CPUs) made inference 3×
    # slower in measurements here.
    inference_threads: int | None = None

    @staticmethod
    def from_dict(d: dict[str, Any]) -> SweepConfig:
        d = dict(d)
        known = set(SweepConfig.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise SweepError(f"unknown sweep config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        codecs = []
        for c in d.get("codecs", []):
            if not isinstance(c, dict) or "name" not in c or "qualities" not in c:
                raise SweepError(f"each codec needs 'name' and 'qualities', got {c!r}")
            codecs.append(CodecSpec(str(c["name"]), [int(q) for q in c["qualities"]], dict(c.get("options") or {})))
        d["codecs"] = codecs
        for key in ("dataset_kind", "dataset", "task", "out"):
            if key not in d:
                raise SweepError(f"sweep config is missing {key!r}")
        return SweepConfig(**d)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["preprocessing"] = [preprocessor_id(p) if callable(p) else p for p in self.preprocessing]
        return d


# ----------------------------------------------------------------------------- worker side

_WORKER_CODECS: dict[str, Any] = {}
_WORKER_PRE: dict[str, Any] = {}


@dataclass
class EncodeJob:
    index: int  # image index in the dataset
    path: str
    codec: str
    options: dict[str, Any]
    quality: int
    pre_spec: Any  # str or picklable callable
    pre_id: str
    cache_root: str | None


@dataclass
class EncodedImage:
    index: int
    bits: int
    pixels: int
    psnr: float | None  # None = identical (infinite PSNR)
    msssim: float
    msssim_scales: int
    cached: bool
    decoded: np.ndarray
    key: str = ""  # encode-cache key: identifies the bits, hence the task output too


def _worker_codec(name: str, options: dict[str, Any]) -> Any:
    key = name + json.dumps(options, sort_keys=True, default=str)
    if key not in _WORKER_CODECS:
        from shared.codecs import get_codec

        _WORKER_CODECS[key] = get_codec(name, **options)
    return _WORKER_CODECS[key]


def _worker_pre(spec: Any, pid: str) -> Any:
    if pid not in _WORKER_PRE:
        _WORKER_PRE[pid] = load_preprocessor(spec)
    return _WORKER_PRE[pid]


def encode_one(job: EncodeJob) -> EncodedImage:
    """Load, preprocess, encode (or fetch from cache), decode and score one image."""
    from shared.datasets import load_rgb

    rgb = load_rgb(Path(job.path))
    codec = _worker_codec(job.codec, job.options)
    cache = EncodeCache(Path(job.cache_root) if job.cache_root else None)
    key = encode_key(content_hash(rgb), codec.name, codec.settings(), job.quality, job.pre_id)
    hit = cache.get(codec.name, key, codec.extension)
    if hit is not None:
        data, meta = hit
        decoded = codec.decode(data)
        ps, ms, scales = meta["psnr"], float(meta["msssim"]), int(meta["msssim_scales"])
    else:
        pre = _worker_pre(job.pre_spec, job.pre_id)
        x = rgb if pre is None else apply_preprocessor(pre, rgb, codec.name, job.quality)
        data = codec.encode(x, job.quality)
        decoded = codec.decode(data)
        if decoded.shape != rgb.shape:
            raise SweepError(f"{job.path}: {codec.name} decoded {decoded.shape}, original is {rgb.shape}")
        p = psnr(rgb, decoded)
        ps = p if math.isfinite(p) else None
        detail = ms_ssim_detail(rgb, decoded)
        ms, scales = detail.value, detail.scales
        cache.put(codec.name, key, codec.extension, data,
                  {"psnr": ps, "msssim": ms, "msssim_scales": scales, "quality": job.quality,
                   "codec": codec.name, "preprocessing": job.pre_id})
    return EncodedImage(job.index, len(data) * 8, rgb.shape[0] * rgb.shape[1], ps, ms, scales,
                        hit is not None, decoded, key)


# ----------------------------------------------------------------------------- scoring


class _Scorer:
    """Turns task outputs into per-image records and point metrics for one task kind."""

    def __init__(self, kind: str, dataset: Any) -> None:
        self.kind = kind
        self.dataset = dataset
        self.ground_truth = dataset.ground_truth
        self.metric_names = [m for m in metrics_for(kind, self.ground_truth) if m not in ("psnr", "msssim")]
        self.pristine_probs: np.ndarray | None = None
        self.pristine_dets: list[Detections] = []
        self.labels: np.ndarray | None = None
        if kind == "classification" and self.ground_truth == "labels":
            self.labels = np.array([int(s.target) for s in dataset], dtype=np.int64)
        self.coco = getattr(dataset, "coco", None) if kind == "detection" and self.ground_truth == "coco" else None
        self.image_ids = [int(s.target.image_id) for s in dataset] if self.coco is not None else []

    # pristine -------------------------------------------------------------------------------
    def set_pristine(self, outputs: Sequence[Any]) -> None:
        if self.kind == "classification":
            self.pristine_probs = np.stack([np.asarray(o.probs, dtype=np.float32) for o in outputs])
        else:
            self.pristine_dets = [Detections.of(o) for o in outputs]

    def save_pristine(self, out: Path) -> None:
        if self.pristine_probs is not None:
            np.save(out / "pristine_probs.npy", self.pristine_probs)
        else:
            atomic_write_json(out / "pristine_detections.json", [d.to_json() for d in self.pristine_dets])

    def load_pristine(self, out: Path, n: int) -> bool:
        if self.kind == "classification":
            p = out / "pristine_probs.npy"
            if p.is_file():
                probs = np.load(p)
                if probs.shape[0] == n:
                    self.pristine_probs = probs
                    return True
            return False
        p = out / "pristine_detections.json"
        if p.is_file():
            dets = [Detections.of(d) for d in json.loads(p.read_text())]
            if len(dets) == n:
                self.pristine_dets = dets
                return True
        return False

    # per image ------------------------------------------------------------------------------
    def records(self, indices: Sequence[int], outputs: Sequence[Any]) -> list[dict[str, Any]]:
        idx = np.asarray(indices, dtype=np.int64)
        recs: list[dict[str, Any]] = []
        if self.kind == "classification":
            assert self.pristine_probs is not None
            probs = np.stack([np.asarray(o.probs, dtype=np.float64) for o in outputs])
            ref = self.pristine_probs[idx].astype(np.float64)
            kl = kl_divergence(ref, probs)
            agree = top1_agreement(ref, probs)
            pred = probs.argmax(axis=1)
            if self.labels is not None:
                y = self.labels[idx]
                c1, c5, ce = topk_correct(probs, y, 1), topk_correct(probs, y, 5), cross_entropy(probs, y)
            for k in range(len(idx)):
                r: dict[str, Any] = {"pred": int(pred[k]), "kl": float(kl[k]), "agree": bool(agree[k])}
                if self.labels is not None:
                    r.update(correct1=bool(c1[k]), correct5=bool(c5[k]), ce=float(ce[k]))
                recs.append(r)
            return recs
        for i, o in zip(idx, outputs, strict=True):
            det = Detections.of(o)
            c = pseudo_counts(self.pristine_dets[int(i)], det)
            recs.append({"detections": det.to_json(), "tp": c.tp, "fp": c.fp, "fn": c.fn,
                         "soft_matched": c.soft_matched, "soft_mass": c.soft_mass})
        return recs

    def pristine_records(self) -> list[dict[str, Any]]:
        n = len(self.dataset)
        if self.kind == "classification":
            assert self.pristine_probs is not None
            return self.records(range(n), [_Probs(p) for p in self.pristine_probs])
        return self.records(range(n), self.pristine_dets)

    # per point ------------------------------------------------------------------------------
    def summarize(self, recs: Sequence[dict[str, Any]]) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.kind == "classification":
            out["kl"] = float(np.mean([r["kl"] for r in recs]))
            out["agreement"] = float(np.mean([r["agree"] for r in recs]))
            if self.labels is not None:
                out["top1"] = float(np.mean([r["correct1"] for r in recs]))
                out["top5"] = float(np.mean([r["correct5"] for r in recs]))
                out["ce"] = float(np.mean([r["ce"] for r in recs]))
            return out
        counts = [_Counts(r) for r in recs]
        out["f1"] = f1_from_counts(counts)  # type: ignore[arg-type]
        out["det_distortion"] = soft_distortion_from_counts(counts)  # type: ignore[arg-type]
        if self.coco is not None:
            dets = {self.image_ids[i]: Detections.of(r["detections"]) for i, r in enumerate(recs)}
            scores = coco_map(self.coco, dets, self.image_ids)
            out.update(map=scores.map, ap50=scores.ap50, ap75=scores.ap75)
        return out


@dataclass
class _Probs:
    probs: np.ndarray


class _Counts:
    def __init__(self, r: dict[str, Any]) -> None:
        self.tp, self.fp, self.fn = int(r["tp"]), int(r["fp"]), int(r["fn"])
        self.soft_matched, self.soft_mass = float(r["soft_matched"]), float(r["soft_mass"])


# ----------------------------------------------------------------------------- sweep


@dataclass
class PointKey:
    codec: str
    options: dict[str, Any]
    settings: dict[str, Any]
    quality: int
    pre_spec: Any
    pre_id: str

    @property
    def point_id(self) -> str:
        h = hashlib.sha256(json.dumps([self.settings, self.options], sort_keys=True, default=str).encode())
        pre = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.pre_id)[:40]
        return f"{self.codec}-{h.hexdigest()[:8]}-{pre}-q{self.quality}"


@dataclass
class SweepStats:
    points_total: int = 0
    points_computed: int = 0
    points_resumed: int = 0
    images_encoded: int = 0
    cache_hits: int = 0
    inferences: int = 0  # images the task model actually ran on (the rest came from the cache)
    seconds: float = 0.0


def _model_identity(config: SweepConfig, weights_identity: str) -> str:
    """What a cached task output depends on: task, options and the weights' bytes."""
    return json.dumps({"task": config.task, "options": config.task_options, "weights": weights_identity},
                      sort_keys=True, default=str)


@dataclass
class SweepResult:
    out: Path
    summary: dict[str, Any]
    stats: SweepStats


def _sanitize(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    if isinstance(obj, np.generic):
        return _sanitize(obj.item())
    return obj


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _iter_encoded(jobs: list[EncodeJob], workers: int, ctx_name: str, ahead: int) -> Iterator[EncodedImage]:
    """Encoded images in job order. With ``workers`` > 1 a process pool works up to ``ahead`` jobs in
    advance (bounded, so decoded images never pile up in memory); a crashed worker raises
    ``BrokenProcessPool`` instead of hanging."""
    if workers <= 1:
        for j in jobs:
            yield encode_one(j)
        return
    ctx = multiprocessing.get_context(ctx_name)
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        it = iter(jobs)
        window: deque[Future[EncodedImage]] = deque(ex.submit(encode_one, j) for j in islice(it, ahead))
        while window:
            result = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(ex.submit(encode_one, nxt))
            yield result
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _set_inference_threads(config: SweepConfig, encoders_busy: bool = True) -> int | None:
    """Set torch's intra-op threads; returns the previous value (None: torch not loaded). With
    encoders busy, inference gets the CPUs they leave (≥ 1); otherwise (pristine pass, or every
    encode a cache hit so workers only decode) it gets every CPU."""
    import os
    import sys

    if "torch" not in sys.modules:
        return None
    import torch

    old = int(torch.get_num_threads())
    cpus = os.cpu_count() or 1
    auto = max(1, cpus - max(config.workers, 0)) if encoders_busy else cpus
    torch.set_num_threads(config.inference_threads or auto)
    return old


def _all_cached(jobs: list[EncodeJob], hashes: dict[int, str], keys: list[PointKey]) -> bool:
    """Whether every job's encoded file is already in the cache (checked without encoding)."""
    from shared.codecs import get_codec

    if not jobs or jobs[0].cache_root is None:
        return False
    cache = EncodeCache(Path(jobs[0].cache_root))
    exts = {k.codec: get_codec(k.codec, **k.options).extension for k in keys}
    settings = {(k.codec, k.pre_id, k.quality): k.settings for k in keys}
    for j in jobs:
        key = encode_key(hashes[j.index], j.codec, settings[(j.codec, j.pre_id, j.quality)], j.quality, j.pre_id)
        if cache.get(j.codec, key, exts[j.codec]) is None:
            return False
    return True


PointCallback = Callable[[dict[str, Any]], None]


def run_sweep(
    config: SweepConfig,
    *,
    model: Any = None,
    on_point: PointCallback | None = None,
) -> SweepResult:
    """Run (or resume) a sweep; returns the summary written to ``<out>/sweep.json``.

    ``model`` may be passed to reuse a loaded task model (else ``get_task(config.task)``);
    ``on_point`` is called with each point's summary after it is written.
    """
    if model is None:
        from shared.tasks import get_task

        model = get_task(config.task, **config.task_options)
    old_threads = _set_inference_threads(config, encoders_busy=False)
    try:
        return _run_sweep(config, model, on_point)
    finally:
        if old_threads is not None:
            import torch

            torch.set_num_threads(old_threads)


def _run_sweep(config: SweepConfig, model: Any, on_point: PointCallback | None) -> SweepResult:
    from tqdm import tqdm

    from shared.codecs import get_codec
    from shared.datasets import open_dataset

    t0 = time.perf_counter()
    out = Path(config.out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    ds = open_dataset(config.dataset_kind, config.dataset, limit=config.limit, **config.dataset_options)
    if len(ds) == 0:
        raise SweepError(f"dataset {config.dataset} has no images")
    scorer = _Scorer(model.kind, ds)
    cache_root: str | None
    if config.cache_dir == "":
        cache_root = None
    else:
        cache_root = str(Path(config.cache_dir) if config.cache_dir else default_cache_dir())

    dataset_info = {
        "kind": config.dataset_kind, "root": str(config.dataset), "n_images": len(ds), "limit": config.limit,
        "ground_truth": ds.ground_truth, "describe": ds.describe(),
        "ids_sha256": hashlib.sha256("\n".join(ds.ids).encode()).hexdigest(),
    }
    weights_path = getattr(model, "weights_path", None)
    task_info = {"name": config.task, "kind": model.kind,
                 # the file name, not the path: committed results must not depend on the checkout
                 "weights": Path(weights_path).name if weights_path else getattr(model, "weights_description", "?"),
                 "weights_identity": getattr(model, "weights_identity", "unknown")}
    base_fp = {"dataset": dataset_info["ids_sha256"], "task": config.task, "weights": task_info["weights_identity"]}
    stats = SweepStats()
    outputs_cache = OutputCache(Path(cache_root) if cache_root is not None else None,
                                _model_identity(config, task_info["weights_identity"]))

    def predict_cached(images: list[np.ndarray], keys: list[str]) -> list[Any]:
        outs: list[Any] = [outputs_cache.get(k) for k in keys]
        missing = [i for i, o in enumerate(outs) if o is None]
        if missing:
            for i, o in zip(missing, model.predict([images[i] for i in missing]), strict=True):
                outs[i] = o
                outputs_cache.put(keys[i], o)
            stats.inferences += len(missing)
        return outs
    pixels = None

    # Enumerate points; load the finished ones.
    keys: list[PointKey] = []
    codec_settings: dict[str, Any] = {}
    for spec in config.codecs:
        codec = get_codec(spec.name, **spec.options)
        settings = codec.settings()
        codec_settings[f"{spec.name}{'' if not spec.options else ' ' + json.dumps(spec.options)}"] = settings
        for q in spec.qualities:
            codec.quality.check(q)
        for pre in config.preprocessing:
            pid = preprocessor_id(pre)
            keys.extend(PointKey(spec.name, spec.options, settings, int(q), pre, pid) for q in spec.qualities)
    ids = [k.point_id for k in keys]
    if len(set(ids)) != len(ids):
        raise SweepError("the sweep lists the same (codec, options, preprocessing, quality) point twice")
    stats.points_total = len(keys)
    done: dict[str, dict[str, Any]] = {}
    pending: list[PointKey] = []
    for k in keys:
        fp = _fingerprint({**base_fp, "codec": k.codec, "settings": k.settings, "quality": k.quality,
                           "pre": k.pre_id})
        path = out / "points" / f"{k.point_id}.json"
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
            except json.JSONDecodeError:
                rec = {}
            if rec.get("fingerprint") == fp:
                done[k.point_id] = rec["summary"]
                stats.points_resumed += 1
                continue
        pending.append(k)

    # Pristine predictions (reference for KL / agreement / pseudo GT) — computed once per output dir.
    pristine_fp_path = out / "pristine.json"
    hashes: dict[int, str] = {}
    pristine_ok = False
    if pristine_fp_path.is_file():
        meta = json.loads(pristine_fp_path.read_text())
        pristine_ok = meta.get("fingerprint") == _fingerprint(base_fp) and scorer.load_pristine(out, len(ds))
    if not pristine_ok:
        outs: list[Any] = []
        sizes: list[int] = []
        bar = tqdm(total=len(ds), desc="pristine", unit="img", disable=not config.progress)
        for start in range(0, len(ds), config.batch_size):
            imgs = [s.load() for s in ds.samples[start : start + config.batch_size]]
            hashes.update({start + i: content_hash(im) for i, im in enumerate(imgs)})
            sizes.extend(im.shape[0] * im.shape[1] for im in imgs)
            pristine_keys = [f"{hashes[start + i]}-pristine" for i in range(len(imgs))]
            outs.extend(predict_cached(imgs, pristine_keys))
            bar.update(len(imgs))
        bar.close()
        scorer.set_pristine(outs)
        scorer.save_pristine(out)
        prec = scorer.pristine_records()
        pristine_summary = {"metrics": scorer.summarize(prec), "pixels": sizes}
        atomic_write_json(out / "pristine.json",
                          _sanitize({"fingerprint": _fingerprint(base_fp), **pristine_summary}))
    pristine_meta = json.loads(pristine_fp_path.read_text())
    pixels = pristine_meta["pixels"]

    point_summaries: dict[str, dict[str, Any]] = dict(done)

    def write_summary() -> dict[str, Any]:
        summary = {
            "format": RESULT_FORMAT,
            "config": config.to_json(),
            "dataset": dataset_info,
            "task": task_info,
            "codec_settings": codec_settings,
            "metrics": ["bpp", *scorer.metric_names, "psnr", "msssim"],
            "pristine": pristine_meta["metrics"],
            "points": [point_summaries[k.point_id] for k in keys if k.point_id in point_summaries],
        }
        atomic_write_json(out / "sweep.json", _sanitize(summary), indent=1)
        return summary

    summary = write_summary()
    n = len(ds)
    jobs = [
        EncodeJob(i, str(ds[i].path), k.codec, k.options, k.quality, k.pre_spec, k.pre_id, cache_root)
        for k in pending
        for i in range(n)
    ]
    if jobs and cache_root is not None:
        if not hashes:  # pristine pass was resumed: hash the originals (fast) to probe the cache
            hashes = {i: content_hash(ds[i].load()) for i in range(n)}
        warm = _all_cached(jobs, hashes, pending)
    else:
        warm = False
    _set_inference_threads(config, encoders_busy=not warm)
    bar = tqdm(total=len(jobs), desc="encode+infer", unit="img", disable=not config.progress)
    encoded_iter = _iter_encoded(jobs, config.workers, config.mp_context, ahead=2 * config.batch_size)
    try:
        for k in pending:
            t_point = time.perf_counter()
            items: list[EncodedImage] = []
            recs: list[dict[str, Any]] = []
            batch: list[EncodedImage] = []

            def flush(batch: list[EncodedImage] = batch, recs: list[dict[str, Any]] = recs) -> None:
                if batch:
                    outputs = predict_cached([b.decoded for b in batch], [b.key for b in batch])
                    recs.extend(scorer.records([b.index for b in batch], outputs))
                    for b in batch:
                        b.decoded = np.empty((0, 0, 3), np.uint8)  # free memory early
                    batch.clear()

            for _ in range(n):
                enc = next(encoded_iter)
                if enc.pixels != pixels[enc.index]:
                    raise SweepError(f"image {enc.index} changed size since the pristine pass; delete {out}")
                items.append(enc)
                batch.append(enc)
                stats.images_encoded += not enc.cached
                stats.cache_hits += enc.cached
                if len(batch) >= config.batch_size:
                    flush()
                bar.update(1)
            flush()
            per_image = []
            for enc, r in zip(items, recs, strict=True):
                per_image.append({"id": ds[enc.index].id, "bits": enc.bits, "pixels": enc.pixels,
                                  "psnr": enc.psnr, "msssim": enc.msssim, **r})
            bits = np.array([e.bits for e in items], dtype=np.float64)
            pix = np.array([e.pixels for e in items], dtype=np.float64)
            psnrs = [e.psnr for e in items if e.psnr is not None]
            point = {
                "id": k.point_id,
                "codec": k.codec,
                "options": k.options,
                "settings": k.settings,
                "quality": k.quality,
                "quality_name": get_codec(k.codec, **k.options).quality.name,
                "preprocessing": k.pre_id,
                "n_images": n,
                "bpp": float(bits.sum() / pix.sum()),
                "bpp_mean_per_image": float(np.mean(bits / pix)),
                "psnr": float(np.mean(psnrs)) if psnrs else float("inf"),
                "n_identical": int(sum(e.psnr is None for e in items)),
                "msssim": float(np.mean([e.msssim for e in items])),
                "msssim_min_scales": int(min(e.msssim_scales for e in items)),
                **scorer.summarize(recs),
                "encoded": int(sum(not e.cached for e in items)),
                "cache_hits": int(sum(e.cached for e in items)),
                "seconds": time.perf_counter() - t_point,
            }
            fp = _fingerprint({**base_fp, "codec": k.codec, "settings": k.settings, "quality": k.quality,
                               "pre": k.pre_id})
            atomic_write_json(out / "points" / f"{k.point_id}.json",
                              _sanitize({"format": POINT_FORMAT, "fingerprint": fp, "summary": point,
                                         "images": per_image}))
            point_summaries[k.point_id] = _sanitize(point)
            stats.points_computed += 1
            summary = write_summary()
            if on_point is not None:
                on_point(point)
    finally:
        bar.close()
        close = getattr(encoded_iter, "close", None)
        if close is not None:
            close()
    stats.seconds = time.perf_counter() - t0
    return SweepResult(out, summary, stats)


def load_config(path: str | Path) -> SweepConfig:
    """A sweep config from YAML (keys as :class:`SweepConfig`; codecs: [{name, qualities, options}])."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise SweepError(f"sweep config not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SweepError(f"{p}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise SweepError(f"{p}: expected a mapping at the top level")
    return SweepConfig.from_dict(data)
