"""Bjøntegaard-delta rate at equal task accuracy (or distortion), with a paired bootstrap.

BD-rate is computed by the ``bjontegaard`` package: log10(rate) is interpolated as a function of
the metric (PCHIP, as in JVET CTC; Akima as a cross-check — both are always reported) and the
difference of the two interpolants is averaged over the metric range where the curves overlap;
the result is ``(10^Δ − 1)·100`` percent (negative = the test method needs fewer bits).

Rules that make every number traceable:

- **Direction.** For metrics where lower is better (cross-entropy, KL, detection distortion) the
  metric is negated before interpolation, so "higher is better" holds for the fit; the BD-rate
  then means "rate change at equal distortion".
- **Non-monotonic points.** PCHIP needs the metric to increase strictly with rate. Points are
  sorted by rate and any point *dominated* by a cheaper one (rate ≥ and metric ≤ another point's)
  is dropped; what remains is the curve's Pareto front. Dropped points are listed in
  :class:`BDResult` (``dropped_anchor`` / ``dropped_test``) and reports print them. With
  ``nonmonotonic="error"`` a dominated point raises instead.
- **Overlap.** Only the overlapping metric range is integrated; its fraction of the union is
  reported. No overlap (or fewer than 2 points left) gives NaN with the reason in ``note``.

Paired bootstrap (:func:`bootstrap_bd_rate`): each replicate draws N image indices with
replacement and applies the *same* draw to both methods at every rate point; per point the rate
is ``Σ bits / Σ pixels`` over the drawn images and the metric is recomputed on the drawn images
(a mean, a ratio of sums, or any aggregate such as COCO AP through a weighted callable).
The interval is the percentile interval of the replicates' BD-rates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from shared.metrics.rate import bits_per_pixel

Method = Literal["pchip", "akima"]
METHODS: tuple[str, ...] = ("pchip", "akima")


class BDRateError(ValueError):
    """Inputs cannot give a BD-rate (mismatched lengths, bad rates, a dominated point in strict mode)."""


class ImageSetMismatchError(BDRateError):
    """Anchor and test were measured on different images, so they cannot be paired."""


def check_same_images(anchor_ids: Sequence[str], test_ids: Sequence[str], anchor: str = "anchor",
                      test: str = "test") -> None:
    """Refuse to pair curves unless they cover exactly the same image ids."""
    a, t = set(anchor_ids), set(test_ids)
    if len(a) != len(anchor_ids) or len(t) != len(test_ids):
        raise ImageSetMismatchError(f"{anchor if len(a) != len(anchor_ids) else test} lists an image id twice")
    if a != t:
        only_a, only_t = sorted(a - t), sorted(t - a)
        raise ImageSetMismatchError(
            f"{anchor} ({len(a)} images) and {test} ({len(t)} images) were measured on different images "
            f"({len(only_a)} only in {anchor}{', e.g. ' + only_a[0] if only_a else ''}; {len(only_t)} only in "
            f"{test}{', e.g. ' + only_t[0] if only_t else ''}); BD-rates pair images, re-run them on the same set"
        )


@dataclass(frozen=True)
class DroppedPoint:
    index: int  # position in the caller's input
    rate: float
    metric: float
    reason: str

    def describe(self) -> str:
        return f"#{self.index} (rate {self.rate:.4g}, metric {self.metric:.4g}): {self.reason}"


@dataclass(frozen=True)
class BDResult:
    value: float  # percent, with the requested method
    method: str
    values: dict[str, float]  # every method in METHODS → percent (the cross-check)
    higher_is_better: bool
    overlap: tuple[float, float] | None  # metric interval integrated (in the metric's own units)
    overlap_fraction: float
    dropped_anchor: tuple[DroppedPoint, ...] = ()
    dropped_test: tuple[DroppedPoint, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["dropped_anchor"] = [asdict(p) for p in self.dropped_anchor]
        d["dropped_test"] = [asdict(p) for p in self.dropped_test]
        return _finite(d)


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def monotone_points(
    rate: Sequence[float] | np.ndarray,
    metric: Sequence[float] | np.ndarray,
    *,
    strict: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[DroppedPoint]]:
    """Sort by rate and drop dominated points (see module docstring). ``metric`` must already be
    oriented so that higher is better. Returns kept rates, kept metrics, dropped points."""
    r = np.asarray(rate, dtype=np.float64).reshape(-1)
    m = np.asarray(metric, dtype=np.float64).reshape(-1)
    if r.shape != m.shape:
        raise BDRateError(f"{r.size} rates but {m.size} metric values")
    dropped: list[DroppedPoint] = []
    valid = []
    for i in range(r.size):
        if not (np.isfinite(r[i]) and r[i] > 0 and np.isfinite(m[i])):
            dropped.append(DroppedPoint(i, float(r[i]), float(m[i]), "rate not positive or value not finite"))
        else:
            valid.append(i)
    # Sort by rate, and among equal rates best metric first so the worse duplicate is dropped.
    order = sorted(valid, key=lambda i: (r[i], -m[i]))
    keep: list[int] = []
    for i in order:
        if keep and m[i] <= m[keep[-1]]:
            reason = f"dominated by #{keep[-1]} (rate {r[keep[-1]]:.4g}, metric {m[keep[-1]]:.4g})"
            if strict:
                raise BDRateError(f"non-monotonic rate–metric point #{i}: {reason}")
            dropped.append(DroppedPoint(i, float(r[i]), float(m[i]), reason))
        else:
            keep.append(i)
    return r[keep], m[keep], sorted(dropped, key=lambda p: p.index)


def _bd(ra: np.ndarray, ma: np.ndarray, rt: np.ndarray, mt: np.ndarray, method: str) -> float:
    import bjontegaard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overlap is checked and reported by the caller
        value = bjontegaard.bd_rate(
            ra, ma, rt, mt, method=method, require_matching_points=False, min_overlap=0.0
        )
    return float(value)


def bd_rate(
    rate_anchor: Sequence[float] | np.ndarray,
    metric_anchor: Sequence[float] | np.ndarray,
    rate_test: Sequence[float] | np.ndarray,
    metric_test: Sequence[float] | np.ndarray,
    method: str = "pchip",
    *,
    higher_is_better: bool = True,
    nonmonotonic: Literal["drop", "error"] = "drop",
) -> BDResult:
    """BD-rate (percent) of ``test`` against ``anchor`` at equal metric; see the module docstring."""
    if method not in METHODS:
        raise BDRateError(f"unknown interpolation {method!r}; choose one of: {', '.join(METHODS)}")
    if nonmonotonic not in ("drop", "error"):
        raise BDRateError(f"nonmonotonic must be 'drop' or 'error', got {nonmonotonic!r}")
    sign = 1.0 if higher_is_better else -1.0
    strict = nonmonotonic == "error"
    ra, ma, da = monotone_points(rate_anchor, sign * np.asarray(metric_anchor, dtype=np.float64), strict=strict)
    rt, mt, dt = monotone_points(rate_test, sign * np.asarray(metric_test, dtype=np.float64), strict=strict)
    # Report dropped points in the metric's own orientation.
    da = [DroppedPoint(p.index, p.rate, sign * p.metric, p.reason) for p in da]
    dt = [DroppedPoint(p.index, p.rate, sign * p.metric, p.reason) for p in dt]
    nan_values = {m: float("nan") for m in METHODS}
    if ra.size < 2 or rt.size < 2:
        return BDResult(
            float("nan"), method, nan_values, higher_is_better, None, 0.0, tuple(da), tuple(dt),
            f"fewer than 2 usable points (anchor {ra.size}, test {rt.size})",
        )
    lo, hi = max(ma.min(), mt.min()), min(ma.max(), mt.max())
    span = max(ma.max(), mt.max()) - min(ma.min(), mt.min())
    if hi <= lo:
        return BDResult(
            float("nan"), method, nan_values, higher_is_better, None, 0.0, tuple(da), tuple(dt),
            "the curves' metric ranges do not overlap",
        )
    values = {m: _bd(ra, ma, rt, mt, m) for m in METHODS}
    overlap = (float(sign * lo), float(sign * hi)) if sign > 0 else (float(sign * hi), float(sign * lo))
    notes = []
    if da or dt:
        notes.append(f"dropped {len(da)} anchor and {len(dt)} test point(s) as non-monotonic")
    frac = float((hi - lo) / span) if span > 0 else 1.0
    if frac < 0.5:
        notes.append(f"curves overlap on only {frac:.0%} of the metric range")
    return BDResult(values[method], method, values, higher_is_better, overlap, frac, tuple(da), tuple(dt),
                    "; ".join(notes))


# ----------------------------------------------------------------------------- bootstrap

WeightedAggregate = Callable[[int, np.ndarray], float]


@dataclass
class PerImageCurve:
    """Per-image data of one method's rate–metric curve (P rate points × N images).

    The metric at point p for image weights w is, in order of preference:
    ``aggregate(p, w)`` if given; else ``Σ w·numerator[p] / Σ w·denominator[p]`` (a ratio of sums,
    e.g. micro-F1); else ``Σ w·values[p] / Σ w`` (a mean, e.g. top-1 or cross-entropy).
    """

    bits: np.ndarray  # (P, N) file bits
    pixels: np.ndarray  # (N,) original pixels per image
    values: np.ndarray | None = None  # (P, N)
    numerator: np.ndarray | None = None  # (P, N)
    denominator: np.ndarray | None = None  # (P, N)
    aggregate: WeightedAggregate | None = None
    labels: list[str] = field(default_factory=list)  # optional point names (qualities)
    ids: list[str] | None = None  # image ids (N), the key anchor and test are paired on

    def __post_init__(self) -> None:
        self.bits = np.asarray(self.bits, dtype=np.float64)
        self.pixels = np.asarray(self.pixels, dtype=np.float64).reshape(-1)
        if self.bits.ndim != 2 or self.bits.shape[1] != self.pixels.shape[0]:
            raise BDRateError(f"bits must be (points, images) matching {self.pixels.shape[0]} images, "
                              f"got {self.bits.shape}")
        for name in ("values", "numerator", "denominator"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.asarray(arr, dtype=np.float64)
                if arr.shape != self.bits.shape:
                    raise BDRateError(f"{name} has shape {arr.shape}, expected {self.bits.shape}")
                setattr(self, name, arr)
        if self.aggregate is None and self.values is None and (self.numerator is None or self.denominator is None):
            raise BDRateError("a PerImageCurve needs values, numerator+denominator, or an aggregate")

    @property
    def n_images(self) -> int:
        return int(self.pixels.shape[0])

    def rates(self, w: np.ndarray) -> np.ndarray:
        return np.array([bits_per_pixel(row, self.pixels, w) for row in self.bits])

    def reordered(self, ids: Sequence[str]) -> PerImageCurve:
        """The same curve with its images in the order of ``ids`` (same set required)."""
        if self.ids is None:
            raise BDRateError("this curve carries no image ids to pair on")
        check_same_images(ids, self.ids)
        pos = {i: n for n, i in enumerate(self.ids)}
        order = np.array([pos[i] for i in ids])
        inv = np.argsort(order)
        agg = self.aggregate

        def aggregate(p: int, w: np.ndarray) -> float:
            assert agg is not None
            return agg(p, w[inv])

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:, order]

        return PerImageCurve(self.bits[:, order], self.pixels[order], pick(self.values), pick(self.numerator),
                             pick(self.denominator), None if agg is None else aggregate, self.labels, list(ids))

    def metrics(self, w: np.ndarray) -> np.ndarray:
        if self.aggregate is not None:
            return np.array([self.aggregate(p, w) for p in range(self.bits.shape[0])])
        if self.numerator is not None and self.denominator is not None:
            den = self.denominator @ w
            return np.asarray(np.where(den > 0, (self.numerator @ w) / np.where(den > 0, den, 1.0), np.nan))
        assert self.values is not None
        return np.asarray((self.values @ w) / float(w.sum()))


@dataclass(frozen=True)
class BootstrapResult:
    estimate: BDResult  # on all images
    ci: float
    low: float
    high: float
    n: int
    n_failed: int  # replicates whose BD-rate was NaN (no overlap / too few points)
    n_with_dropped_points: int
    seed: int
    samples: np.ndarray  # (n,) percent, NaN for failed replicates

    def to_json(self) -> dict[str, Any]:
        return _finite(
            {
                "estimate": self.estimate.to_json(),
                "ci": self.ci,
                "low": self.low,
                "high": self.high,
                "n": self.n,
                "n_failed": self.n_failed,
                "n_with_dropped_points": self.n_with_dropped_points,
                "seed": self.seed,
            }
        )

    def describe(self) -> str:
        e = self.estimate
        return (f"{e.value:+.2f}% [{self.low:+.2f}, {self.high:+.2f}] ({self.ci:.0%} paired bootstrap, "
                f"n={self.n}, {e.method}; akima {e.values.get('akima', float('nan')):+.2f}%)")


def bootstrap_bd_rate(
    per_image_anchor: PerImageCurve,
    per_image_test: PerImageCurve,
    *,
    method: str = "pchip",
    higher_is_better: bool = True,
    n: int = 1000,
    seed: int = 0,
    ci: float = 0.90,
) -> BootstrapResult:
    """Point estimate on all images plus a paired percentile bootstrap interval (module docstring).
    Curves that carry image ids are paired by id (and refused with :class:`ImageSetMismatchError`
    when the sets differ)."""
    if per_image_anchor.ids is not None and per_image_test.ids is not None:
        per_image_test = per_image_test.reordered(per_image_anchor.ids)
    elif per_image_anchor.n_images != per_image_test.n_images:
        raise BDRateError(
            f"paired bootstrap needs the same images: anchor has {per_image_anchor.n_images}, "
            f"test has {per_image_test.n_images}"
        )
    if not 0 < ci < 1:
        raise BDRateError(f"ci must be in (0, 1), got {ci}")
    n_img = per_image_anchor.n_images
    ones = np.ones(n_img)

    def one(w: np.ndarray) -> BDResult:
        return bd_rate(
            per_image_anchor.rates(w), per_image_anchor.metrics(w),
            per_image_test.rates(w), per_image_test.metrics(w),
            method, higher_is_better=higher_is_better,
        )

    estimate = one(ones)
    rng = np.random.default_rng(seed)
    samples = np.full(n, np.nan)
    with_dropped = 0
    for b in range(n):
        w = np.bincount(rng.integers(0, n_img, size=n_img), minlength=n_img).astype(np.float64)
        res = one(w)
        samples[b] = res.value
        with_dropped += bool(res.dropped_anchor or res.dropped_test)
    finite = samples[np.isfinite(samples)]
    alpha = (1.0 - ci) / 2.0
    if finite.size:
        low, high = (float(v) for v in np.quantile(finite, [alpha, 1.0 - alpha]))
    else:
        low = high = float("nan")
    return BootstrapResult(estimate, ci, low, high, n, int(n - finite.size), with_dropped, seed, samples)
