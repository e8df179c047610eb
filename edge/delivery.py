"""The background task that drains the spool, oldest frame first, whenever the cloud answers.

Started and cancelled by the app's lifespan. A 2xx removes the frame; a 4xx for a spooled frame
removes it too and counts it as rejected (the same request would be refused forever); a connect
error or 5xx keeps it and waits — exponential backoff with jitter up to ``backoff_max_s``, cut
short as soon as a direct upload from ``/encode`` succeeds (the cloud is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from edge.errors import CloudRejectedError, CloudUnavailableError
from edge.metrics import EdgeMetrics
from edge.spool import Spool
from edge.uplink import CloudClient, backoff_delay

log = logging.getLogger("edge.delivery")


class Delivery:
    def __init__(self, spool: Spool, cloud: CloudClient, metrics: EdgeMetrics, *, backoff_s: float = 0.5,
                 backoff_max_s: float = 30.0) -> None:
        self.spool, self.cloud, self.metrics = spool, cloud, metrics
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.new_frame = asyncio.Event()  # set when a frame is spooled
        self.cloud_up = asyncio.Event()  # set when a direct upload succeeded
        self.delivered = 0
        self.rejected = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="edge-spool-delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def sync_metrics(self) -> None:
        self.metrics.spool(len(self.spool), self.spool.bytes, self.spool.dropped)

    async def _run(self) -> None:
        failures = 0
        while True:
            self.new_frame.clear()
            frame = await asyncio.to_thread(self.spool.peek)
            self.sync_metrics()
            if frame is None:
                await self.new_frame.wait()
                continue
            p = frame.params
            try:
                await self.cloud.analyze(p, frame.bitstream, retries=0)
            except CloudRejectedError as exc:
                await asyncio.to_thread(self.spool.remove, frame.seq)
                self.rejected += 1
                self.metrics.frame("spool_rejected", p.codec or "unknown", p.camera_id)
                log.warning("spool: the cloud rejected frame %s/%d (HTTP %d); dropped it: %s", p.camera_id,
                            p.frame_id, exc.cloud_status, exc.message)
                continue
            except CloudUnavailableError as exc:
                delay = backoff_delay(failures, self.backoff_s, self.backoff_max_s)
                failures += 1
                log.info("spool: %d frame(s) wait; cloud unavailable (%s); next try in %.1f s", len(self.spool),
                         exc.message, delay)
                self.cloud_up.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cloud_up.wait(), delay)
                continue
            except Exception:  # never let the task die: a bug here must not stop delivery for good
                log.exception("spool: delivering frame %s/%d failed unexpectedly", p.camera_id, p.frame_id)
                await asyncio.sleep(backoff_delay(failures, self.backoff_s, self.backoff_max_s))
                failures += 1
                continue
            failures = 0
            await asyncio.to_thread(self.spool.remove, frame.seq)
            self.delivered += 1
            self.metrics.frame("spool_delivered", p.codec or "unknown", p.camera_id)
