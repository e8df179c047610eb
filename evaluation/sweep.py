"""Rate–accuracy sweeps: dataset × task × codec × quality × preprocessing.

The data passes once through four stages:

1. **plan** (:mod:`evaluation.plan`): the points, the finished ones (resumed from
   ``<out>/points/<id>.json`` when their fingerprint matches), the encode jobs of the rest;
2. **encode** (:mod:`evaluation.encode`, in :class:`shared.pipeline.EncoderPool` processes):
   image → bitstream → decoded image and its PSNR / MS-SSIM, each cached;
3. **score** (:mod:`evaluation.score`, main process, batched): task outputs (cached, else
   inferred) → per-image records against the pristine prediction and the labels;
4. **summarise** (:mod:`evaluation.summarise`): point summaries, per-image files, ``sweep.json``.

The pristine prediction (the model on the original images) is computed once per output folder.
Every cached value is keyed by what determines it (:mod:`evaluation.keys`): a warm re-run encodes
nothing and infers nothing. bpp is Σ bits / Σ pixels (:mod:`shared.metrics.rate`), PSNR the mean
of per-image PSNRs capped at 100 dB (:mod:`shared.metrics.image`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.cache import OutputCache
from evaluation.config import CodecSpec, SweepConfig, SweepError, load_config
from evaluation.encode import EncodedImage, EncodeJob, encode_image
from evaluation.keys import content_hash, dataset_identity, digest, outputs_key, pristine_key, task_identity
from evaluation.plan import Plan, Point, encode_jobs, plan_sweep
from evaluation.preprocessors import resolve_preprocessor_id
from evaluation.score import Predictor, Scorer
from evaluation.summarise import point_summary, sanitize, write_point, write_sweep
from shared.atomic import atomic_write_json
from shared.paths import cache_dir
from shared.pipeline import EncoderPool
from shared.runtime import current_runtime

__all__ = ["CodecSpec", "SweepConfig", "SweepError", "SweepResult", "SweepStats", "load_config", "run_sweep"]


@dataclass
class SweepStats:
    points_total: int = 0
    points_computed: int = 0
    points_resumed: int = 0
    images_encoded: int = 0
    cache_hits: int = 0
    inferences: int = 0  # images the task model actually ran on (the rest came from the cache)
    seconds: float = 0.0


@dataclass
class SweepResult:
    out: Path
    summary: dict[str, Any]
    stats: SweepStats


PointCallback = Callable[[dict[str, Any]], None]


def _set_torch_threads(n: int) -> int | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    old = int(torch.get_num_threads())
    torch.set_num_threads(max(1, n))
    return old


def run_sweep(config: SweepConfig, *, model: Any = None, on_point: PointCallback | None = None) -> SweepResult:
    """Run (or resume) a sweep; returns the summary written to ``<out>/sweep.json``.

    ``model`` may be passed to reuse a loaded task model (its options are read from the object);
    ``on_point`` is called with each point's summary after it is written.
    """
    if model is None:
        from shared.tasks import get_task

        model = get_task(config.task, **config.task_options)
    cpus = os.cpu_count() or 1
    old = _set_torch_threads(config.inference_threads or cpus)
    try:
        return _Sweep(config, model).run(on_point)
    finally:
        if old is not None:
            _set_torch_threads(old)


class _Sweep:
    def __init__(self, config: SweepConfig, model: Any) -> None:
        from shared.datasets import open_dataset

        self.config = config
        self.model = model
        self.out = Path(config.out)
        self.ds = open_dataset(config.dataset_kind, config.dataset, limit=config.limit, **config.dataset_options)
        if len(self.ds) == 0:
            raise SweepError(f"dataset {config.dataset} has no images")
        self.workers = int(config.workers or current_runtime().encode_workers)
        self.cache_root = None if config.cache_dir == "" else str(Path(config.cache_dir or cache_dir("eval")))
        self.task = task_identity(config.task, model)
        self.task_digest = digest(self.task)
        self.base: dict[str, Any] = {"dataset": dataset_identity(self.ds), "task": self.task_digest}
        self.scorer = Scorer(model.kind, self.ds)
        self.predict = Predictor(model, OutputCache(Path(self.cache_root) if self.cache_root else None))
        self.stats = SweepStats()

    def run(self, on_point: PointCallback | None) -> SweepResult:
        t0 = time.perf_counter()
        (self.out / "points").mkdir(parents=True, exist_ok=True)
        pool = EncoderPool(self.workers, 2 * self.config.batch_size, mp_context=self.config.mp_context) \
            if self.workers > 1 else None
        with pool if pool is not None else contextlib.nullcontext():
            ids = self._preprocessor_ids(pool)
            plan = plan_sweep(self.config, ids, self.out, self.base)
            self.stats.points_total, self.stats.points_resumed = len(plan.points), len(plan.done)
            pristine = self._pristine()
            header = self._header(plan, pristine)
            summaries = dict(plan.done)
            summary = write_sweep(self.out, header, plan.points, summaries)
            jobs = encode_jobs(plan.pending, [str(s.path) for s in self.ds], self.cache_root, self.task_digest)
            _set_torch_threads(self.config.inference_threads or max(1, (os.cpu_count() or 1) - self.workers))
            stream = self._encoded(jobs, pool)
            from tqdm import tqdm

            with tqdm(total=len(jobs), desc="encode+infer", unit="img", disable=not self.config.progress) as bar:
                for point in plan.pending:
                    summaries[point.id] = self._point(point, stream, bar)
                    self.stats.points_computed += 1
                    summary = write_sweep(self.out, header, plan.points, summaries)
                    if on_point is not None:
                        on_point(summaries[point.id])
        self.stats.inferences = self.predict.inferences
        self.stats.seconds = time.perf_counter() - t0
        return SweepResult(self.out, summary, self.stats)

    # plan -------------------------------------------------------------------------------------
    def _preprocessor_ids(self, pool: EncoderPool | None) -> list[str]:
        """Ids reported by an encoder process, which is where the preprocessor runs."""
        if pool is None:
            return [resolve_preprocessor_id(p) for p in self.config.preprocess]
        return [pool.submit(resolve_preprocessor_id, p).result() for p in self.config.preprocess]

    def _header(self, plan: Plan, pristine: dict[str, Any]) -> dict[str, Any]:
        weights_path = getattr(self.model, "weights_path", None)
        return {
            "config": self.config.to_json(),
            "dataset": {"kind": self.config.dataset_kind, "root": str(self.config.dataset), "n_images": len(self.ds),
                        "limit": self.config.limit, "ground_truth": self.ds.ground_truth,
                        "describe": self.ds.describe(), **self.base["dataset"]},
            "task": {"name": self.config.task, "kind": self.model.kind,
                     # the file name, not the path: committed results must not depend on the checkout
                     "weights": Path(weights_path).name if weights_path else getattr(self.model,
                                                                                      "weights_description", "?"),
                     "weights_identity": self.task["weights"], "options": self.task["options"],
                     "identity_sha256": self.task_digest},
            "codec_settings": plan.codec_settings,
            "metrics": ["bpp", *self.scorer.metric_names, "psnr", "msssim"],
            "pristine": pristine["metrics"],
        }

    # pristine ---------------------------------------------------------------------------------
    def _pristine(self) -> dict[str, Any]:
        path = self.out / "pristine.json"
        fp = digest(self.base)
        with contextlib.suppress(OSError, json.JSONDecodeError):
            meta: dict[str, Any] = json.loads(path.read_text())
            if meta.get("fingerprint") == fp and self.scorer.load_pristine(self.out):
                return meta
        from tqdm import tqdm

        outs: list[Any] = []
        bs = self.config.batch_size
        with tqdm(total=len(self.ds), desc="pristine", unit="img", disable=not self.config.progress) as bar:
            for start in range(0, len(self.ds), bs):
                imgs = [s.load() for s in self.ds.samples[start : start + bs]]
                outs.extend(self.predict(imgs, [pristine_key(content_hash(im), self.task_digest) for im in imgs]))
                bar.update(len(imgs))
        self.scorer.set_pristine(outs)
        self.scorer.save_pristine(self.out)
        meta = sanitize({"fingerprint": fp, "metrics": self.scorer.summarize(self.scorer.pristine_records())})
        atomic_write_json(path, meta)
        return meta

    # encode -----------------------------------------------------------------------------------
    def _encoded(self, jobs: list[EncodeJob], pool: EncoderPool | None) -> Iterator[EncodedImage]:
        if pool is None:
            return (encode_image(j) for j in jobs)
        return pool.imap(encode_image, jobs)

    # score + summarise ------------------------------------------------------------------------
    def _point(self, point: Point, stream: Iterator[EncodedImage], bar: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        images: list[EncodedImage] = []
        records: list[dict[str, Any]] = []
        batch: list[EncodedImage] = []
        for _ in range(len(self.ds)):
            enc = next(stream)
            self._check(point, enc)
            images.append(enc)
            batch.append(enc)
            self.stats.images_encoded += enc.encoded
            self.stats.cache_hits += not enc.encoded
            if len(batch) >= self.config.batch_size:
                records.extend(self._score(batch))
            bar.update(1)
        records.extend(self._score(batch))
        summary = point_summary(point, images, self.scorer.summarize(records), time.perf_counter() - t0)
        return write_point(self.out, point, point.fingerprint(self.base), summary, self.ds.ids, images, records)

    def _check(self, point: Point, enc: EncodedImage) -> None:
        if enc.preprocessor_id != point.preprocessor_id or enc.decoder_id != point.decoder_id:
            raise SweepError(f"an encoder process ran {enc.preprocessor_id!r} / {enc.decoder_id!r} for point "
                             f"{point.id} planned with {point.preprocessor_id!r} / {point.decoder_id!r}; results "
                             "would mix numerics (set PREPICM_NPP_BACKEND to pin the backend)")

    def _score(self, batch: list[EncodedImage]) -> list[dict[str, Any]]:
        if not batch:
            return []
        keys = [outputs_key(b.decoded_key, self.task_digest) for b in batch]
        outputs = self.predict([b.decoded for b in batch], keys)
        records = self.scorer.records([b.index for b in batch], outputs)
        for b in batch:
            b.decoded = None  # free the pixels early
        batch.clear()
        return records
