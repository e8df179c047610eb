"""What one running edge app holds (built in the lifespan, injected into routes by edge.api.deps)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.core.config import EdgeSettings
from edge.delivery import Delivery
from edge.encoding import Encoders
from edge.metrics import EdgeMetrics
from edge.service import EdgeService
from edge.spool import Spool
from edge.uplink import CloudClient


@dataclass
class EdgeState:
    settings: EdgeSettings
    metrics: EdgeMetrics
    encoders: Encoders
    spool: Spool
    cloud: CloudClient
    delivery: Delivery
    service: EdgeService
    npp_description: dict[str, object] | None
