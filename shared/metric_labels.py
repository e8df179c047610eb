"""Label values that come from clients (camera ids) kept bounded, so a fleet or a hostile caller
cannot create unbounded Prometheus series: the first ``limit`` ids are their own label, later
ones share ``"other"``, a missing id is ``"unknown"``."""

from __future__ import annotations

import threading


class BoundedLabels:
    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "unknown"
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return "other"
