"""What one running cloud app holds (built in the lifespan, injected into routes by cloud.api.deps)."""

from __future__ import annotations

from dataclasses import dataclass

from cloud.analysis import Analyzer
from cloud.batcher import Batcher
from cloud.core.config import CloudSettings
from cloud.metrics import CloudMetrics
from cloud.store import ResultStore


@dataclass
class CloudState:
    settings: CloudSettings
    metrics: CloudMetrics
    store: ResultStore
    batchers: dict[str, Batcher]
    analyzer: Analyzer
