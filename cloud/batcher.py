"""Dynamic batching: frames for the same task model that arrive together run as one ``predict``.

Each request puts its decoded frame on the task's queue and awaits its own output. One loop per
task takes the first waiting frame, gathers more until ``max_batch`` frames or ``max_delay_s``
after the first, and runs ``model.predict(frames)`` in the task's own worker thread. While a batch
runs, new frames queue up and form the next one, so under load batches fill by themselves and
throughput grows with concurrency. A batch stops waiting early when no other frame is on its way
(:class:`Arrivals`: admitted requests not yet queued), so a lone client pays no delay at all.
This is the scheme of NVIDIA Triton's dynamic batcher (``max_queue_delay_microseconds``,
``preferred_batch_size``) and TorchServe's ``batch_size``/``max_batch_delay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from shared.tasks import TaskModel, TaskOutput

log = logging.getLogger("cloud")


@dataclass(frozen=True)
class Prediction:
    """One frame's output and what it cost: seconds queued, seconds of its batch's predict, batch size."""

    output: TaskOutput
    queue_s: float
    inference_s: float
    batch_size: int


@dataclass
class _Item:
    image: np.ndarray
    future: asyncio.Future[Prediction]
    enqueued: float


class Arrivals:
    """How many frames are on their way to the batchers (admitted, not yet queued): while none
    is, waiting for more cannot fill a batch. Event-loop only; no lock."""

    def __init__(self) -> None:
        self.count = 0


class BatcherClosedError(RuntimeError):
    """The batcher stopped (the app is shutting down) before this frame ran."""


class Batcher:
    """One task model's queue and batching loop; ``start`` and ``close`` on the event loop."""

    def __init__(self, model: TaskModel, max_batch: int, max_delay_s: float,
                 on_batch: Callable[[int, float], None] | None = None, arrivals: Arrivals | None = None) -> None:
        if max_batch < 1 or max_delay_s < 0:
            raise ValueError(f"max_batch must be ≥ 1 and max_delay_s ≥ 0, got {max_batch}, {max_delay_s}")
        self.model = model
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.on_batch = on_batch  # (batch size, predict seconds), e.g. for metrics
        self.arrivals = arrivals  # None: always wait up to max_delay_s
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        # one thread per model: predict calls of one model never overlap (torch uses its own threads)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{model.name}")
        self._task: asyncio.Task[None] | None = None
        self._current: list[_Item] = []  # the batch being gathered or run

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.model.name}")

    def submit(self, image: np.ndarray) -> asyncio.Future[Prediction]:
        """Queue one decoded frame now; the future resolves when the batch it joined has run."""
        if not self.running:
            raise BatcherClosedError(f"the {self.model.name} batcher is not running")
        item = _Item(image, asyncio.get_running_loop().create_future(), time.perf_counter())
        self._queue.put_nowait(item)
        return item.future

    async def predict(self, image: np.ndarray) -> Prediction:
        return await self.submit(image)

    async def _gather(self) -> list[_Item]:
        batch = self._current = [await self._queue.get()]
        deadline = time.perf_counter() + self.max_delay_s
        while len(batch) < self.max_batch:
            try:  # what is already waiting joins without delay
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            if self.arrivals is not None and self.arrivals.count <= 0:
                break  # nothing else is coming: waiting would only delay this batch
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [it for it in await self._gather() if not it.future.done()]  # cancelled: client gone
            if not batch:
                continue
            started = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self._executor, self.model.predict, [it.image for it in batch])
            except Exception as exc:  # a model failure fails its batch, never the loop
                log.exception("%s: predict on a batch of %d failed", self.model.name, len(batch))
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - started
            if self.on_batch is not None:
                self.on_batch(len(batch), seconds)
            for it, out in zip(batch, outputs, strict=True):
                if not it.future.done():
                    it.future.set_result(Prediction(out, started - it.enqueued, seconds, len(batch)))

    async def close(self) -> None:
        """Stop the loop; frames still queued fail with :class:`BatcherClosedError`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        orphans = self._current
        while not self._queue.empty():
            orphans.append(self._queue.get_nowait())
        for it in orphans:
            if not it.future.done():
                it.future.set_exception(BatcherClosedError(f"the {self.model.name} batcher stopped"))
        self._executor.shutdown(wait=True, cancel_futures=True)
