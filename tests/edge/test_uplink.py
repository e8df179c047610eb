from __future__ import annotations

import pytest

from edge.uplink import backoff_delay


def test_backoff_doubles_is_jittered_and_capped() -> None:
    lows = [backoff_delay(a, 0.2, 5.0, rng=lambda: 0.0) for a in range(8)]
    highs = [backoff_delay(a, 0.2, 5.0, rng=lambda: 1.0) for a in range(8)]
    assert lows[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])  # half the doubled delay is fixed
    assert highs[:4] == pytest.approx([0.2, 0.4, 0.8, 1.6])  # the other half is random
    assert max(highs) == pytest.approx(5.0) and lows[-1] == pytest.approx(2.5)  # capped
    assert all(lo < hi for lo, hi in zip(lows, highs, strict=True))
