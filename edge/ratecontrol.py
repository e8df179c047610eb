"""Rate control: pick each frame's codec quality so its real bitstream lands near a bit target.

The target is either a request's ``target_bpp`` or a camera's uplink budget (bits per second at a
stated fps). The policy (docs/edge.md has the measurements):

1. **Predict.** For BPG/HEVC, log bpp is close to linear in the QP: the quantiser step doubles
   every 6 QP (ITU-T H.265 §8.6.2), and rate roughly halves with it, so ``ln bpp ≈ a − s·QP`` with
   ``s ≈ ln 2 / 6``. From the camera's last frame (its quality, its bpp and the slope measured on
   its recent frames) the first guess is ``q₀ = q_last + (ln bpp_last − ln target) / s``. A camera
   seen for the first time starts from the last frame of any camera, else from the configured
   default quality.
2. **Search with the real encoder.** Each trial is a real encode (NPP included, since its output
   depends on the quality). The trials keep a bracket — the best quality known to overshoot the
   target and the coarsest known to undershoot it — and the next trial is the model's prediction
   from the latest trial (with the slope refitted on the bracket's two ends once both exist),
   clamped to the nearest untried quality strictly inside the bracket. Every trial therefore
   narrows the bracket: it cannot diverge or repeat itself, whatever the content does to the model.
3. **Stop** when a trial is within ``tolerance`` of the target, when the bracket closes (two
   neighbouring qualities, one above and one below: no integer quality lands closer), when the
   quality range ends, or after ``max_trials`` encodes.
4. **Choose** the trial closest to the target in log rate (relative error, symmetric in
   over/undershoot) and send that bitstream: no extra encode.

A camera's budget becomes a per-frame target through a token bucket: ``bits_per_second / fps``
plus the frame's share of what earlier frames under- or overspent (bounded to one second of
budget), so the stream's average rate follows the budget although each frame's quality is an
integer.

The module is pure logic (no codec, no I/O): :class:`RateSearch` proposes qualities and is told
their bits; the service (and ``benchmarks/rate_control.py``) run the encodes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from shared.codecs import QualityScale

#: prior slope of ln(bpp) per unit of "compression" (QP up, or quality down), by quality-scale name
PRIOR_SLOPE = {"qp": math.log(2) / 6, "quality": 0.03}
_SLOPE_RANGE = (0.005, 1.0)


@dataclass(frozen=True)
class Trial:
    quality: int
    bits: int
    bpp: float


@dataclass
class CameraRate:
    """What rate control remembers about one camera."""

    quality: int | None = None
    bpp: float | None = None
    slope: float | None = None
    bucket_bits: float = 0.0  # budget saved (+) or overspent (−) so far


class RateSearch:
    """One frame's search. ``qualities`` are the values allowed for this frame (the codec's
    scale, narrowed to the NPP's trained range when an NPP runs); ``compress_up`` is True when a
    higher value means fewer bits (QP), False when it means more bits (JPEG-style quality).

    >>> s = RateSearch(0.5, range(0, 52), True, start=32, slope=0.115)
    >>> while (q := s.next_quality()) is not None:
    ...     s.observe(q, bits_of_real_encode(q))
    >>> best = s.best()
    """

    def __init__(self, target_bpp: float, qualities: range | list[int], compress_up: bool, *, start: int,
                 slope: float, pixels: int, max_trials: int = 4, tolerance: float = 0.05) -> None:
        if not target_bpp > 0 or not math.isfinite(target_bpp):
            raise ValueError(f"target bpp must be a positive number, got {target_bpp}")
        allowed = sorted(set(int(q) for q in qualities))
        if not allowed:
            raise ValueError("no quality is allowed for this frame")
        # work in "compression level" r: bits never increase with r (QP itself; minus a quality)
        self._sign = 1 if compress_up else -1
        self._levels = sorted(self._sign * q for q in allowed)
        self.target_bpp = float(target_bpp)
        self.pixels = int(pixels)
        self.slope = min(max(slope, _SLOPE_RANGE[0]), _SLOPE_RANGE[1])
        self.max_trials = int(max_trials)
        self.tolerance = float(tolerance)
        self.trials: list[Trial] = []
        self._done = False
        self._next_level: int | None = self._nearest(self._sign * int(start))

    # -- the loop -------------------------------------------------------------------------------------

    def next_quality(self) -> int | None:
        """The quality to encode next, or None when the search is over."""
        if self._done or self._next_level is None or len(self.trials) >= self.max_trials:
            return None
        return self._sign * self._next_level

    def observe(self, quality: int, bits: int) -> None:
        """Report a real encode's size; plans the next trial."""
        trial = Trial(int(quality), int(bits), bits / self.pixels)
        self.trials.append(trial)
        if abs(self._error(trial)) <= math.log1p(self.tolerance):
            self._done = True
            return
        self._next_level = self._plan(trial)
        if self._next_level is None:
            self._done = True

    def best(self) -> Trial:
        """The trial closest to the target (relative error in rate)."""
        if not self.trials:
            raise RuntimeError("no trial was observed")
        return min(self.trials, key=lambda t: (abs(self._error(t)), -self._sign * t.quality))

    # -- internals ------------------------------------------------------------------------------------

    def _error(self, t: Trial) -> float:
        return math.log(max(t.bpp, 1e-12) / self.target_bpp)  # > 0: too many bits

    def _nearest(self, level: float) -> int:
        return min(self._levels, key=lambda r: (abs(r - level), r))

    def _plan(self, last: Trial) -> int | None:
        tried = {self._sign * t.quality for t in self.trials}
        over = [self._sign * t.quality for t in self.trials if self._error(t) > 0]  # need more compression
        under = [self._sign * t.quality for t in self.trials if self._error(t) <= 0]
        lo = max(over) if over else None  # every level ≤ lo overshoots
        hi = min(under) if under else None  # every level ≥ hi undershoots
        inside = [r for r in self._levels if (lo is None or r > lo) and (hi is None or r < hi) and r not in tried]
        if not inside:
            return None  # bracket closed, or the range ends beyond the last trial
        if len(over) and len(under):
            self._refit()
        want = self._sign * last.quality + self._error(last) / self.slope
        return min(inside, key=lambda r: (abs(r - want), r))

    def _refit(self) -> None:
        """Slope from the two trials that bracket the target most tightly."""
        over = max((t for t in self.trials if self._error(t) > 0), key=lambda t: self._sign * t.quality)
        under = min((t for t in self.trials if self._error(t) <= 0), key=lambda t: self._sign * t.quality)
        dr = self._sign * (under.quality - over.quality)
        if dr > 0 and over.bpp > 0 and under.bpp > 0:
            s = math.log(over.bpp / under.bpp) / dr
            self.slope = min(max(s, _SLOPE_RANGE[0]), _SLOPE_RANGE[1])

    def measured_slope(self) -> float | None:
        """ln-bpp slope per level between the two trials nearest the target (None with < 2)."""
        pts = sorted(self.trials, key=lambda t: abs(self._error(t)))[:2]
        if len(pts) < 2 or pts[0].quality == pts[1].quality or min(pts[0].bpp, pts[1].bpp) <= 0:
            return None
        s = -math.log(pts[0].bpp / pts[1].bpp) / (self._sign * (pts[0].quality - pts[1].quality))
        return s if _SLOPE_RANGE[0] <= s <= _SLOPE_RANGE[1] else None


@dataclass
class RateController:
    """Per-camera state and the targets it derives; one per app. Thread-safe."""

    max_trials: int = 4
    tolerance: float = 0.05
    cameras: dict[str, CameraRate] = field(default_factory=dict)
    _last_any: CameraRate = field(default_factory=CameraRate)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def budget_target_bpp(self, camera_id: str, bits_per_second: float, fps: float, pixels: int) -> float:
        """A frame's target from a camera budget: ``bits_per_second / fps`` plus a second's share
        of the bucket (what earlier frames saved or overspent), never below a tenth of a frame's share."""
        per_frame = bits_per_second / fps
        with self._lock:
            bucket = self.cameras.setdefault(camera_id, CameraRate()).bucket_bits
        return max(per_frame + bucket / max(fps, 1.0), 0.1 * per_frame) / pixels

    def spend(self, camera_id: str, bits_per_second: float, fps: float, bits: int) -> None:
        """Book a budgeted frame's real size against its camera's bucket (bounded to ±1 s of budget)."""
        with self._lock:
            state = self.cameras.setdefault(camera_id, CameraRate())
            state.bucket_bits = min(max(state.bucket_bits + bits_per_second / fps - bits, -bits_per_second),
                                    bits_per_second)

    def search(self, camera_id: str, target_bpp: float, scale: QualityScale, qualities: range | list[int],
               default_quality: int, pixels: int) -> RateSearch:
        """Start one frame's search from the camera's history (or any camera's, or the default)."""
        compress_up = not scale.higher_is_better
        sign = 1 if compress_up else -1
        prior = PRIOR_SLOPE.get(scale.name, PRIOR_SLOPE["quality"])
        with self._lock:
            state = self.cameras.get(camera_id)
            if state is None or state.quality is None:
                state = self._last_any
            slope = state.slope or prior
            if state.quality is not None and state.bpp:
                start_level = sign * state.quality + math.log(state.bpp / target_bpp) / slope
                start = round(sign * start_level)
            else:
                start = default_quality
        return RateSearch(target_bpp, qualities, compress_up, start=start, slope=slope, pixels=pixels,
                          max_trials=self.max_trials, tolerance=self.tolerance)

    def learn(self, camera_id: str, search: RateSearch) -> Trial:
        """Remember the chosen trial (and the slope the search measured); returns it."""
        best = search.best()
        measured = search.measured_slope()
        with self._lock:
            state = self.cameras.setdefault(camera_id, CameraRate())
            for s in (state, self._last_any):
                s.quality, s.bpp = best.quality, best.bpp
                if measured is not None:
                    s.slope = measured if s.slope is None else 0.5 * s.slope + 0.5 * measured
        return best
