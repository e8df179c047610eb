"""The edge's Prometheus metrics, on a registry of its own (one per app: tests read them back).

Bits saved is a SAMPLED ESTIMATE: every ``PLAIN_SAMPLE_EVERY``-th frame that runs the NPP is also
encoded without it at the same quality; ``prepicm_edge_plain_bits_total`` adds those plain sizes,
``prepicm_edge_sampled_bits_total`` the NPP sizes of the same frames, and
``prepicm_edge_bits_saved_total`` / ``prepicm_edge_bits_overspent_total`` the positive and negative
parts of their per-frame difference (a counter never decreases, and an NPP may spend more bits on
some frames). The saving rate is ``1 − sampled_bits / plain_bits`` (docs/edge.md).
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metric_labels import BoundedLabels

BITS_BUCKETS = (1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7)
BPP_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0)
SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
STAGES = ("decode_input", "npp", "encode", "upload")
#: delivered / spooled (forwarded), encoded (forward=false), rejected (cloud 4xx), invalid (our 4xx),
#: failed (5xx), spool_delivered / spool_rejected (later, by the delivery task)
OUTCOMES = ("delivered", "spooled", "encoded", "rejected", "invalid", "failed", "spool_delivered", "spool_rejected")
#: distinct camera label values kept; beyond them cameras share "other" (bounded cardinality)
MAX_CAMERA_LABELS = 256


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, codecs: tuple[str, ...] = ()) -> None:
        self.registry = registry or CollectorRegistry()
        self.codecs = frozenset(codecs)  # label values allowed for "codec" (a request may name anything)
        r = self.registry
        self.frames = Counter("prepicm_edge_frames", "Frames by outcome, codec and camera",
                              ["outcome", "codec", "camera"], registry=r)
        self.frame_bits = Histogram("prepicm_edge_frame_bits", "Bits of each frame's bitstream, by camera",
                                    ["camera"], buckets=BITS_BUCKETS, registry=r)
        self.frame_bpp = Histogram("prepicm_edge_frame_bpp", "Bits per pixel of each frame's bitstream",
                                   buckets=BPP_BUCKETS, registry=r)
        self.stage_seconds = Histogram("prepicm_edge_stage_seconds", "Wall-clock seconds per stage",
                                       ["stage"], buckets=SECONDS_BUCKETS, registry=r)
        self.spool_frames = Gauge("prepicm_edge_spool_frames", "Frames waiting in the spool", registry=r)
        self.spool_bytes = Gauge("prepicm_edge_spool_bytes", "Bytes waiting in the spool", registry=r)
        self.spool_dropped = Counter("prepicm_edge_spool_dropped", "Frames dropped from the full spool "
                                     "(oldest first) or unreadable", registry=r)
        self.bits_saved = Counter("prepicm_edge_bits_saved", "Sampled: plain bits minus NPP bits, where positive",
                                  registry=r)
        self.bits_overspent = Counter("prepicm_edge_bits_overspent",
                                      "Sampled: NPP bits minus plain bits, where positive", registry=r)
        self.plain_bits = Counter("prepicm_edge_plain_bits", "Sampled: bits of the plain (no NPP) encodes",
                                  registry=r)
        self.sampled_bits = Counter("prepicm_edge_sampled_bits", "Sampled: bits of the NPP encodes of the "
                                    "frames that were also encoded plain", registry=r)
        self.rc_encodes = Counter("prepicm_edge_rate_control_encodes", "Real encodes run by rate control",
                                  registry=r)
        self.upload_retries = Counter("prepicm_edge_upload_retries", "Upload attempts repeated after a "
                                      "connect error or a 5xx", registry=r)
        self._cameras = BoundedLabels(MAX_CAMERA_LABELS)
        self._dropped_seen = 0
        self._lock = threading.Lock()
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)
        self.frame_bits.labels(camera="none")  # the series exists before the first frame, as for frames
        for codec in codecs:
            for outcome in OUTCOMES:
                self.frames.labels(outcome=outcome, codec=codec, camera="none")

    def camera_label(self, camera_id: str | None) -> str:
        return self._cameras(camera_id)

    def frame(self, outcome: str, codec: str, camera_id: str | None) -> None:
        self.frames.labels(outcome=outcome, codec=codec, camera=self.camera_label(camera_id)).inc()

    def stage(self, name: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=name).observe(seconds)

    def encoded(self, bits: int, bpp: float, camera_id: str | None) -> None:
        self.frame_bits.labels(camera=self.camera_label(camera_id)).observe(bits)
        self.frame_bpp.observe(bpp)

    def sampled(self, npp_bits: int, plain_bits: int) -> None:
        self.plain_bits.inc(plain_bits)
        self.sampled_bits.inc(npp_bits)
        if plain_bits >= npp_bits:
            self.bits_saved.inc(plain_bits - npp_bits)
        else:
            self.bits_overspent.inc(npp_bits - plain_bits)

    def spool(self, frames: int, nbytes: int, dropped_total: int) -> None:
        self.spool_frames.set(frames)
        self.spool_bytes.set(nbytes)
        # the spool owns the count; the counter follows it
        with self._lock:
            behind, self._dropped_seen = dropped_total - self._dropped_seen, max(dropped_total, self._dropped_seen)
        if behind > 0:
            self.spool_dropped.inc(behind)
