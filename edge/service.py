"""What ``POST /encode`` does with a frame: decode the upload, choose the quality (fixed, a
``target_bpp`` or the camera's budget), run the NPP (in a thread) and the codec (in the process
pool), sample a plain encode now and then, and forward to the cloud or spool.

Everything blocking leaves the event loop: input decoding and the NPP in threads, encoding in
:class:`edge.encoding.Encoders`, spool writes in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from edge.core.config import EdgeSettings
from edge.delivery import Delivery
from edge.encoding import Encoders
from edge.errors import BusyError, CloudUnavailableError, NppNotConfiguredError
from edge.frames import decode_frame
from edge.metrics import EdgeMetrics
from edge.preprocessor import NppPreprocessor
from edge.ratecontrol import RateController
from edge.schemas import EncodeParams
from edge.spool import Spool
from edge.uplink import CloudClient
from shared.codecs import CODECS, CodecUnavailableError, QualityScale
from shared.manifest import OperatingPointError
from shared.pipeline import Encoded
from shared.preprocess import apply_preprocessor
from shared.wire import AnalyzeParams, EncodeResult

log = logging.getLogger("edge")


@dataclass
class Outcome:
    """One frame's result: the bitstream and, when forwarded, what the client is told."""

    encoded: Encoded
    plain_bits: int | None
    result: EncodeResult | None = None  # None with forward=false
    rc_trials: int = 0  # real encodes rate control ran (0: fixed quality)
    timings_s: dict[str, float] = field(default_factory=dict)


class EdgeService:
    def __init__(self, settings: EdgeSettings, metrics: EdgeMetrics, encoders: Encoders, spool: Spool,
                 cloud: CloudClient, delivery: Delivery, npp: NppPreprocessor | None) -> None:
        self.settings, self.metrics, self.encoders = settings, metrics, encoders
        self.spool, self.cloud, self.delivery, self.npp = spool, cloud, delivery, npp
        self.rate = RateController(max_trials=settings.RC_MAX_TRIALS, tolerance=settings.RC_TOLERANCE)
        self._npp_frames = itertools.count()
        self.in_flight = 0  # frames being processed (event-loop only: no lock)
        self._npp_qualities: dict[str, list[int]] = {}

    # -- the request path ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of MAX_IN_FLIGHT places while a frame is read and processed; BusyError if none."""
        if self.in_flight >= self.settings.MAX_IN_FLIGHT:
            raise BusyError(f"{self.in_flight} frames are being processed (MAX_IN_FLIGHT); retry shortly")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def encode(self, data: bytes, p: EncodeParams) -> Outcome:
        codec = (p.codec or self.settings.CODEC).lower()
        scale = self._scale(codec)
        use_npp = self.npp is not None if p.npp is None else p.npp
        if use_npp and self.npp is None:
            raise NppNotConfiguredError("npp=true but this edge has no NPP artifact (PREPICM_EDGE_NPP_ARTIFACT)")
        if p.quality is not None:
            scale.check(p.quality)
            if use_npp:
                self._npp_check(codec, p.quality)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        rgb = await asyncio.to_thread(decode_frame, data, self.settings.MAX_PIXELS)
        timings["decode_input"] = time.perf_counter() - t0
        self.metrics.stage("decode_input", timings["decode_input"])
        sample = use_npp and self.settings.PLAIN_SAMPLE_EVERY > 0 and \
            next(self._npp_frames) % self.settings.PLAIN_SAMPLE_EVERY == 0

        plain: asyncio.Task[tuple[Encoded, float]] | None = None
        trials = 0
        if p.quality is not None or (p.target_bpp is None and self.settings.budget_for(p.camera_id) is None):
            q = p.quality if p.quality is not None else self._default_quality(codec, scale)
            if sample:  # the plain encode does not wait for the NPP: run both at once
                plain = asyncio.create_task(self.encoders.encode(codec, rgb, q))
            try:
                enc = await self._encode_at(rgb, codec, q, use_npp, timings)
            except BaseException:
                if plain is not None:
                    plain.cancel()
                raise
        else:
            enc, trials = await self._rate_controlled(rgb, codec, scale, p, use_npp, timings)
            self.metrics.rc_encodes.inc(trials)
            if sample:
                plain = asyncio.create_task(self.encoders.encode(codec, rgb, enc.quality))
        plain_bits = None
        if plain is not None:
            plain_enc, _ = await plain
            plain_bits = plain_enc.bits
            self.metrics.sampled(enc.bits, plain_bits)
        self.metrics.encoded(enc.bits, enc.bpp, p.camera_id)
        out = Outcome(enc, plain_bits, rc_trials=trials, timings_s=timings)
        if not p.forward:
            self.metrics.frame("encoded", codec, p.camera_id)
            return out
        out.result = await self._forward(p, enc, plain_bits, timings)
        return out

    async def _encode_at(self, rgb: np.ndarray, codec: str, quality: int, use_npp: bool,
                         timings: dict[str, float]) -> Encoded:
        x = rgb
        if use_npp:
            assert self.npp is not None
            t0 = time.perf_counter()
            x = await asyncio.to_thread(apply_preprocessor, self.npp, rgb, codec, quality)
            dt = time.perf_counter() - t0
            timings["preprocess"] = timings.get("preprocess", 0.0) + dt
            self.metrics.stage("npp", dt)
        enc, dt = await self.encoders.encode(codec, x, quality)
        timings["encode"] = timings.get("encode", 0.0) + dt
        self.metrics.stage("encode", dt)
        return replace(enc, preprocessor_id=self.npp.preprocessor_id) if use_npp and self.npp else enc

    async def _rate_controlled(self, rgb: np.ndarray, codec: str, scale: QualityScale, p: EncodeParams,
                               use_npp: bool, timings: dict[str, float]) -> tuple[Encoded, int]:
        pixels = int(rgb.shape[0] * rgb.shape[1])
        budget = None if p.target_bpp is not None else self.settings.budget_for(p.camera_id)
        if budget is not None:
            target = self.rate.budget_target_bpp(p.camera_id, budget.bits_per_second, budget.fps, pixels)
        else:
            assert p.target_bpp is not None
            target = p.target_bpp
        qualities = self._npp_range(codec, scale) if use_npp else range(scale.minimum, scale.maximum + 1)
        search = self.rate.search(p.camera_id, target, scale, qualities, self._default_quality(codec, scale), pixels)
        results: dict[int, Encoded] = {}
        while (q := search.next_quality()) is not None:
            results[q] = await self._encode_at(rgb, codec, q, use_npp, timings)
            search.observe(q, results[q].bits)
        best = self.rate.learn(p.camera_id, search)
        if budget is not None:
            self.rate.spend(p.camera_id, budget.bits_per_second, budget.fps, best.bits)
        return results[best.quality], len(search.trials)

    async def _forward(self, p: EncodeParams, enc: Encoded, plain_bits: int | None,
                       timings: dict[str, float]) -> EncodeResult:
        params = AnalyzeParams(camera_id=p.camera_id, frame_id=p.frame_id,
                               captured_at=time.time() if p.captured_at is None else p.captured_at,
                               codec=enc.codec, tasks=p.tasks, npp=enc.preprocessor_id, quality=enc.quality,
                               plain_bits=plain_bits)
        cloud = None
        # While the cloud is known down and frames already wait, queue behind them at once: the
        # delivery task is probing the cloud, and a camera should not wait out our retries per frame.
        if self.cloud.reachable is False and len(self.spool) > 0:
            delivered = False
        else:
            t0 = time.perf_counter()
            try:
                up = await self.cloud.analyze(params, enc.bitstream)
                delivered, cloud = True, up.result
                self.delivery.cloud_up.set()
            except CloudUnavailableError as exc:
                log.warning("frame %s/%d: %s; spooling it", p.camera_id, p.frame_id, exc.message)
                delivered = False
            finally:
                timings["upload"] = time.perf_counter() - t0
                self.metrics.stage("upload", timings["upload"])
        if not delivered:
            await self._spool(params, enc.bitstream)
        self.metrics.frame("delivered" if delivered else "spooled", enc.codec, p.camera_id)
        return EncodeResult(camera_id=p.camera_id, frame_id=p.frame_id, codec=enc.codec, quality=enc.quality,
                            width=enc.width, height=enc.height, bits=enc.bits, bpp=enc.bpp,
                            npp=enc.preprocessor_id, plain_bits=plain_bits, timings_s=timings,
                            delivered=delivered, cloud=cloud)

    async def _spool(self, params: AnalyzeParams, bitstream: bytes) -> None:
        try:
            seq = await asyncio.to_thread(self.spool.put, params, bitstream)
        except OSError as exc:  # a full or failing disk: the frame is lost, say so
            log.error("spool: cannot store frame %s/%d: %s", params.camera_id, params.frame_id, exc)
            self.spool.dropped += 1
            self.delivery.sync_metrics()
            raise CloudUnavailableError(f"the cloud is unavailable and the frame could not be spooled: {exc}") \
                from None
        self.delivery.sync_metrics()
        if seq is not None:
            self.delivery.new_frame.set()

    # -- qualities ------------------------------------------------------------------------------------------

    def _scale(self, codec: str) -> QualityScale:
        cls = CODECS.get(codec)  # RegistryError → 422 unknown_codec
        reason = cls.unavailable_reason()
        if reason is not None:
            raise CodecUnavailableError(f"codec {codec!r} is unavailable here: {reason}")
        return cls.quality

    def _default_quality(self, codec: str, scale: QualityScale) -> int:
        return self.settings.QUALITY if codec == self.settings.CODEC else scale.default

    def _npp_check(self, codec: str, quality: int) -> None:
        assert self.npp is not None
        self.npp.backend.conditioning_for(codec, quality)  # OperatingPointError → 422

    def _npp_range(self, codec: str, scale: QualityScale) -> list[int]:
        """The qualities of ``codec`` the NPP was trained for (rate control searches only these)."""
        if codec not in self._npp_qualities:
            ok = []
            for q in range(scale.minimum, scale.maximum + 1):
                try:
                    self._npp_check(codec, q)
                    ok.append(q)
                except OperatingPointError:
                    pass
            self._npp_qualities[codec] = ok
        if not self._npp_qualities[codec]:
            raise OperatingPointError(f"the NPP serves no {codec} quality; choose another codec or npp=false")
        return self._npp_qualities[codec]
