"""The cloud's Prometheus metrics, on a registry of its own (one per app: tests read them back)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.metric_labels import BoundedLabels

BITS_BUCKETS = (1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7)
SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256)
#: decode: bitstream → pixels; queue: waiting for a batch slot; inference: one predict() call
STAGES = ("decode", "queue", "inference")
#: analyzed (stored now), duplicate (stored before), rejected (4xx: bad input), unauthorized,
#: overloaded (503: too many in flight), failed (5xx)
OUTCOMES = ("analyzed", "duplicate", "rejected", "unauthorized", "overloaded", "failed")
#: distinct camera label values kept; beyond them cameras share "other" (bounded cardinality)
MAX_CAMERA_LABELS = 256


class CloudMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, codecs: tuple[str, ...] = ()) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames = Counter("prepicm_cloud_frames", "Frames by outcome, codec and camera",
                              ["outcome", "codec", "camera"], registry=r)
        self.stage_seconds = Histogram("prepicm_cloud_stage_seconds", "Wall-clock seconds per stage of a frame",
                                       ["stage"], buckets=SECONDS_BUCKETS, registry=r)
        self.batch_size = Histogram("prepicm_cloud_batch_size", "Frames per predict() call of a task model",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.frame_bits = Histogram("prepicm_cloud_frame_bits", "Bits of each analysed frame's bitstream",
                                    buckets=BITS_BUCKETS, registry=r)
        self.duplicates = Counter("prepicm_cloud_duplicates", "Requests for a (camera, frame) already stored",
                                  registry=r)
        self._cameras = BoundedLabels(MAX_CAMERA_LABELS)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)
        for codec in (*codecs, "unknown"):
            for outcome in OUTCOMES:
                self.frames.labels(outcome=outcome, codec=codec, camera="none")

    def camera_label(self, camera_id: str | None) -> str:
        return self._cameras(camera_id)

    def frame(self, outcome: str, codec: str | None, camera_id: str | None) -> None:
        self.frames.labels(outcome=outcome, codec=codec or "unknown", camera=self.camera_label(camera_id)).inc()

    def stage(self, name: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=name).observe(seconds)
