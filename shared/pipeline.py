"""The one encode pipeline: a frame → (preprocess) → standard codec → bitstream, and back.

Everything that turns pixels into bits or bits into task results goes through here: the
evaluation sweep and codec benchmark, the edge service's ``/encode``, the cloud service's
``/analyze`` and training's real-codec forward pass. No other encode path exists.

For the services::

    from shared.pipeline import EncodePipeline, decode, analyze

    pipe = EncodePipeline("bpg", preprocessor=npp)        # build once per process, reuse
    enc = pipe.encode(rgb, 32)                            # Encoded: bitstream, bits, bpp, timings
    dec = decode(enc.bitstream)                           # codec detected from the header
    res = analyze(dec.image, [yolo])                      # Analysis: outputs by task name, timings

For training (thousands of calls per epoch; in memory, no disk I/O)::

    with EncoderPool(workers=2) as pool:
        decoded, bits = round_trip_batch(frames, "bpg", qps, pool=pool)

``Encoded.bpp`` is bits over the ORIGINAL frame's pixels (:func:`shared.metrics.rate.bits_per_pixel`).
``timings_s`` hold wall-clock seconds per stage (``preprocess``, ``encode``, ``decode``,
``analyze:<task>``). Thread counts come from :mod:`shared.runtime`: pool workers apply the
settings they are given before they encode.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from shared.codecs import Codec, detect_codec, get_codec
from shared.metrics.rate import bits_per_pixel
from shared.preprocess import Preprocessor, apply_preprocessor, preprocessor_id
from shared.runtime import RuntimeSettings, apply_runtime, current_runtime

if TYPE_CHECKING:
    from shared.tasks import TaskModel, TaskOutput

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Encoded:
    """What a frame becomes."""

    bitstream: bytes
    codec: str
    quality: int
    width: int
    height: int
    bits: int  # len(bitstream) * 8
    bpp: float  # bits / (width * height) of the ORIGINAL frame
    preprocessor_id: str | None
    timings_s: dict[str, float] = field(default_factory=dict)  # "preprocess", "encode"


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray
    codec: str
    decoder_id: str  # Codec.decoder_id(): changes whenever decoded pixels could
    timings_s: dict[str, float] = field(default_factory=dict)  # "decode"


@dataclass(frozen=True)
class Analysis:
    outputs: dict[str, TaskOutput]  # task model name → its output
    timings_s: dict[str, float] = field(default_factory=dict)  # "analyze:<task name>"


class EncodePipeline:
    """Preprocessor (optional) + codec, built once and reused for every frame."""

    def __init__(self, codec: Codec | str, preprocessor: Preprocessor | None = None) -> None:
        self.codec = get_codec(codec) if isinstance(codec, str) else codec
        self.preprocessor = preprocessor
        self.preprocessor_id = None if preprocessor is None else preprocessor_id(preprocessor)

    def encode(self, rgb: np.ndarray, quality: int) -> Encoded:
        q = self.codec.quality.check(quality)
        h, w = int(rgb.shape[0]), int(rgb.shape[1])
        timings: dict[str, float] = {}
        x = rgb
        if self.preprocessor is not None:
            t0 = time.perf_counter()
            x = apply_preprocessor(self.preprocessor, rgb, self.codec.name, q)
            timings["preprocess"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = self.codec.encode(x, q)
        timings["encode"] = time.perf_counter() - t0
        bits = len(data) * 8
        return Encoded(data, self.codec.name, q, w, h, bits, bits_per_pixel(bits, w * h), self.preprocessor_id,
                       timings)


_DECODERS: dict[str, Codec] = {}
_DECODERS_LOCK = threading.Lock()


def _decoder(name: str) -> Codec:
    # decoders carry no encoder options, so one instance per codec serves every stream
    with _DECODERS_LOCK:
        if name not in _DECODERS:
            _DECODERS[name] = get_codec(name)
        return _DECODERS[name]


def decoder_id(codec: str) -> str:
    """The decoder identity :func:`decode` would report for this codec."""
    return _decoder(codec).decoder_id()


def decode(bitstream: bytes, codec: str | None = None) -> Decoded:
    """Decode a standard bitstream to RGB; ``codec=None`` detects the format from its header."""
    name = codec or detect_codec(bitstream)
    dec = _decoder(name)
    t0 = time.perf_counter()
    image = dec.decode(bitstream)
    return Decoded(image, name, dec.decoder_id(), {"decode": time.perf_counter() - t0})


def analyze(image: np.ndarray, tasks: Sequence[TaskModel]) -> Analysis:
    """Run each task model on one decoded image."""
    outputs: dict[str, TaskOutput] = {}
    timings: dict[str, float] = {}
    for task in tasks:
        t0 = time.perf_counter()
        outputs[task.name] = task.predict([image])[0]
        timings[f"analyze:{task.name}"] = time.perf_counter() - t0
    return Analysis(outputs, timings)


# ----------------------------------------------------------------------------- process pool


def _init_worker(settings: RuntimeSettings) -> None:
    apply_runtime(settings)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """A worker whose parent died (SIGKILL, OOM) is re-parented; it must not outlive it encoding
    nothing. Polling works with every start method, unlike a parent-death signal, which Linux
    ties to the *thread* that forked the worker (a short-lived thread in a thread pool)."""
    while True:
        time.sleep(every_s)
        if os.getppid() != parent:
            os._exit(0)


class EncoderPool:
    """A bounded process pool for encoding: at most ``workers`` processes and ``max_queued`` jobs
    in flight, so a producer never piles frames up in memory. A context manager; a crashed worker
    raises ``BrokenProcessPool`` instead of hanging. Workers start with ``settings`` applied
    (default: this process's, :func:`shared.runtime.current_runtime`)."""

    def __init__(self, workers: int | None = None, max_queued: int | None = None, *,
                 settings: RuntimeSettings | None = None, mp_context: str = "spawn") -> None:
        s = settings or current_runtime()
        self.workers = int(s.encode_workers if workers is None else workers)
        self.max_queued = int(4 * self.workers if max_queued is None else max_queued)
        if self.workers < 1 or self.max_queued < 1:
            raise ValueError(f"EncoderPool needs workers ≥ 1 and max_queued ≥ 1, got {self.workers}, {self.max_queued}")
        ctx = multiprocessing.get_context(mp_context)
        self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(s,))
        self._slots = threading.BoundedSemaphore(self.max_queued)

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        """Queue ``fn(*args)`` in a worker; blocks while ``max_queued`` jobs are in flight."""
        self._slots.acquire()
        try:
            fut = self._executor.submit(fn, *args)
        except BaseException:
            self._slots.release()
            raise
        fut.add_done_callback(lambda _f: self._slots.release())
        return fut

    def imap(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` over ``items`` in the workers, results in input order, ``max_queued`` ahead."""
        window: deque[Future[R]] = deque()
        it = iter(items)
        for item in it:
            window.append(self._executor.submit(fn, item))
            if len(window) >= self.max_queued:
                break
        while window:
            result = window.popleft().result()
            nxt = next(it, _END)
            if nxt is not _END:
                window.append(self._executor.submit(fn, nxt))
            yield result

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END: Any = object()


# ----------------------------------------------------------------------------- in-memory batches

def _round_trip(job: tuple[Codec, np.ndarray, int]) -> tuple[np.ndarray, int]:
    codec, frame, quality = job
    enc = EncodePipeline(codec).encode(frame, quality)
    return decode(enc.bitstream, enc.codec).image, enc.bits


def round_trip_batch(
    frames: np.ndarray | Sequence[np.ndarray],
    codec: Codec | str,
    qualities: int | Sequence[int],
    *,
    pool: EncoderPool | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Encode and decode a batch in memory: frames (N×H×W×3 uint8 or a list), one quality or one
    per frame → the decoded frames and the bits of each frame's bitstream (int64, N). With a pool
    the frames are coded in its worker processes."""
    items = list(frames)
    qs = [int(qualities)] * len(items) if isinstance(qualities, (int, np.integer)) else [int(q) for q in qualities]
    if len(qs) != len(items):
        raise ValueError(f"{len(qs)} qualities for {len(items)} frames")
    c = get_codec(codec) if isinstance(codec, str) else codec
    jobs = [(c, np.ascontiguousarray(f), q) for f, q in zip(items, qs, strict=True)]
    results = list(pool.imap(_round_trip, jobs)) if pool is not None else [_round_trip(j) for j in jobs]
    return [r[0] for r in results], np.array([r[1] for r in results], dtype=np.int64)
