"""Encoding off the event loop: the edge's bounded process pool (:class:`shared.pipeline.EncoderPool`)
and the job its workers run (a per-worker :class:`shared.pipeline.EncodePipeline` per codec setup).

The NPP is not run here: it runs in the service process (one loaded network, its own threads or
GPU), and the pool receives the preprocessed frame. A crashed worker breaks the pool; the edge
then answers 503 for the frames in flight and starts a fresh pool for the next ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from edge.errors import EncoderUnavailableError
from shared.codecs import get_codec
from shared.pipeline import Encoded, EncodePipeline, EncoderPool
from shared.runtime import RuntimeSettings

log = logging.getLogger("edge")

_PIPELINES: dict[tuple[str, str], EncodePipeline] = {}


def encode_job(codec: str, options_json: str, rgb: np.ndarray, quality: int) -> Encoded:
    """Runs in a pool worker: encode one (already preprocessed) frame; pipelines are built once."""
    key = (codec, options_json)
    pipe = _PIPELINES.get(key)
    if pipe is None:
        pipe = _PIPELINES[key] = EncodePipeline(get_codec(codec, **json.loads(options_json)))
    return pipe.encode(rgb, quality)


class Encoders:
    """The pool, its restart after a crash, and the codec options each codec is built with."""

    def __init__(self, workers: int, runtime: RuntimeSettings, codec_options: dict[str, dict[str, Any]]) -> None:
        self.workers = workers
        self.runtime = runtime
        self._options = {name: json.dumps(opts, sort_keys=True) for name, opts in codec_options.items()}
        self._lock = threading.Lock()
        self.restarts = 0
        self.pool = self._new_pool()

    def _new_pool(self) -> EncoderPool:
        return EncoderPool(self.workers, max_queued=2 * self.workers, settings=self.runtime)

    def options(self, codec: str) -> dict[str, Any]:
        return dict(json.loads(self._options.get(codec, "{}")))

    async def encode(self, codec: str, rgb: np.ndarray, quality: int) -> tuple[Encoded, float]:
        """Encode in a worker; returns the result and the wall-clock seconds it took (queue included)."""
        pool = self.pool
        t0 = time.perf_counter()
        try:
            # submit blocks while the pool's queue is full: keep that wait off the event loop too
            fut = await asyncio.to_thread(pool.submit, encode_job, codec, self._options.get(codec, "{}"), rgb,
                                          quality)
            enc = await asyncio.wrap_future(fut)
        except BrokenProcessPool:
            self._restart(pool)
            raise EncoderUnavailableError("an encoder process died; the pool was restarted, retry the frame") \
                from None
        return enc, time.perf_counter() - t0

    def _restart(self, broken: EncoderPool) -> None:
        with self._lock:
            if self.pool is not broken:
                return  # another request restarted it already
            log.error("encoder pool broken (a worker died); starting a new one")
            self.restarts += 1
            self.pool = self._new_pool()
        threading.Thread(target=broken.close, daemon=True).start()

    async def warm_up(self, codec: str) -> None:
        """Start every worker and check the codec builds there (fail at start, not on a frame)."""
        tiny = np.full((16, 16, 3), 128, np.uint8)
        q = get_codec(codec, **self.options(codec)).quality.default
        await asyncio.gather(*(self.encode(codec, tiny, q) for _ in range(self.workers)))

    def close(self) -> None:
        self.pool.close()
