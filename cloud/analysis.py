"""What ``POST /analyze`` does with a bitstream: refuse what it cannot afford, look the frame up,
decode it (in a thread), run the requested tasks through their batchers and store the result.

Limits come first and cost nothing: the body size is checked while it is read (routes), the
picture size from the stream's header before a single pixel is decoded. A frame already stored
is answered from the store (``duplicate=True``) without decoding it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cloud.batcher import Arrivals, Batcher, Prediction
from cloud.core.config import CloudSettings
from cloud.errors import (
    EmptyBodyError,
    OverloadedError,
    TooManyPixelsError,
    UnknownCodecError,
    UnknownTaskError,
)
from cloud.metrics import CloudMetrics
from cloud.store import ResultStore
from shared.codecs import CODECS, Codec, CodecError, CorruptStreamError, detect_codec, get_codec
from shared.metrics.rate import bits_per_pixel
from shared.pipeline import Decoded, decode
from shared.wire import AnalyzeParams, AnalyzeResult, TaskResult

log = logging.getLogger("cloud")


class Ticket:
    """One admitted request; ``queued()`` once its frame has reached the batchers (or never will)."""

    def __init__(self, arrivals: Arrivals) -> None:
        self._arrivals = arrivals
        self._on_way = True
        arrivals.count += 1

    def queued(self) -> None:
        if self._on_way:
            self._on_way = False
            self._arrivals.count -= 1


@dataclass
class FrameLabels:
    """What is known of a request's frame so far (metrics label a refused frame with it)."""

    camera: str | None = None
    codec: str | None = None


@dataclass(frozen=True)
class FrameRequest:
    """An accepted query: what to run on the body that follows."""

    params: AnalyzeParams
    tasks: tuple[str, ...]
    codec: str | None  # None: detect from the stream's signature
    labels: FrameLabels
    received_at: float


class Analyzer:
    def __init__(self, settings: CloudSettings, metrics: CloudMetrics, store: ResultStore,
                 batchers: Mapping[str, Batcher], arrivals: Arrivals | None = None) -> None:
        self.settings, self.metrics, self.store = settings, metrics, store
        self.batchers = dict(batchers)
        self.arrivals = arrivals or Arrivals()
        self._inflight = 0
        self._decoding = asyncio.Semaphore(settings.DECODE_WORKERS)
        self._probes: dict[str, Codec] = {}
        self._probes_lock = threading.Lock()

    # -- admission ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def admission(self) -> Iterator[Ticket]:
        """One of ``MAX_INFLIGHT`` request slots, or 503 at once (the edge spools and retries)."""
        if self._inflight >= self.settings.MAX_INFLIGHT:
            raise OverloadedError(f"{self._inflight} frames are in progress (the limit); retry shortly")
        self._inflight += 1
        ticket = Ticket(self.arrivals)
        try:
            yield ticket
        finally:
            ticket.queued()
            self._inflight -= 1

    def accept(self, params: AnalyzeParams, labels: FrameLabels | None = None) -> FrameRequest:
        """Check what the query asks for (tasks, codec) before any byte of the body is read."""
        received_at = time.time()
        labels = labels or FrameLabels(camera=params.camera_id)
        asked = params.task_list()
        tasks = list(self.batchers) if asked is None else list(dict.fromkeys(t.lower() for t in asked))
        unknown = [t for t in tasks if t not in self.batchers]
        if unknown:
            raise UnknownTaskError(f"task(s) {', '.join(unknown)} not served here; this cloud runs: "
                                   f"{', '.join(self.batchers)}")
        codec = None
        if params.codec is not None:
            if params.codec not in CODECS:
                raise UnknownCodecError(f"unknown codec {params.codec!r}; choose one of: {', '.join(CODECS.names())}")
            codec = labels.codec = params.codec.lower()
        return FrameRequest(params, tuple(tasks), codec, labels, received_at)

    # -- the request path ---------------------------------------------------------------------------------

    async def analyze(self, req: FrameRequest, bitstream: bytes, ticket: Ticket | None = None) -> AnalyzeResult:
        params, tasks, codec, labels = req.params, req.tasks, req.codec, req.labels
        if not bitstream:
            raise EmptyBodyError("the request body is empty; send the bitstream as application/octet-stream")

        earlier = await asyncio.to_thread(self.store.get, params.camera_id, params.frame_id)
        if earlier is not None:
            return self._duplicate(earlier)

        async with self._decoding:
            decoded = await asyncio.to_thread(self._decode, bitstream, codec, labels)
        self.metrics.stage("decode", decoded.timings_s["decode"])
        image = decoded.image
        h, w = int(image.shape[0]), int(image.shape[1])

        waiting = [self.batchers[t].submit(image) for t in tasks]
        if ticket is not None:
            ticket.queued()
        predictions: list[Prediction] = await asyncio.gather(*waiting)
        timings = {"decode": decoded.timings_s["decode"], "queue": max(p.queue_s for p in predictions)}
        results = []
        for name, p in zip(tasks, predictions, strict=True):
            self.metrics.stage("queue", p.queue_s)
            timings[f"analyze:{name}"] = p.inference_s
            results.append(TaskResult(task=name, kind=self.batchers[name].model.kind, output=p.output.to_json(),
                                      seconds=p.inference_s))
        bits = len(bitstream) * 8
        result = AnalyzeResult(
            camera_id=params.camera_id, frame_id=params.frame_id, captured_at=params.captured_at,
            codec=decoded.codec, width=w, height=h, bits=bits, bpp=bits_per_pixel(bits, w * h),
            npp=params.npp, quality=params.quality, plain_bits=params.plain_bits, decoder_id=decoded.decoder_id,
            results=results, timings_s=timings, received_at=req.received_at)

        stored = await asyncio.to_thread(self.store.add, result)
        if stored.duplicate:  # an identical request stored its result while this one ran
            return self._duplicate(stored.result)
        self.metrics.frame("analyzed", decoded.codec, params.camera_id)
        self.metrics.frame_bits.observe(bits)
        return stored.result

    def _duplicate(self, stored: AnalyzeResult) -> AnalyzeResult:
        self.metrics.duplicates.inc()
        self.metrics.frame("duplicate", stored.codec, stored.camera_id)
        return stored.model_copy(update={"duplicate": True})

    # -- decoding (in a worker thread) ----------------------------------------------------------------------

    def _probe(self, name: str) -> Codec:
        with self._probes_lock:
            if name not in self._probes:
                self._probes[name] = get_codec(name)
            return self._probes[name]

    def _decode(self, bitstream: bytes, codec: str | None, labels: FrameLabels) -> Decoded:
        """Header first: its picture size is checked before the decoder allocates anything."""
        name = codec or detect_codec(bitstream)
        labels.codec = name
        try:
            info = self._probe(name).info(bitstream)
            if info.width * info.height > self.settings.MAX_PIXELS:
                raise TooManyPixelsError(f"the stream declares {info.width}x{info.height} pixels; this cloud "
                                         f"decodes at most {self.settings.MAX_PIXELS}")
            return decode(bitstream, name)
        except (CodecError, TooManyPixelsError):
            raise
        except Exception as exc:
            # the bytes came from outside: a parser failing any other way still means "not a valid
            # stream"; the log keeps the exception so such gaps in the codec layer get fixed
            log.warning("%s stream of %d bytes raised %s: %s", name, len(bitstream), type(exc).__name__, exc,
                        exc_info=True)
            raise CorruptStreamError(f"cannot decode this {name} stream ({type(exc).__name__})") from exc
