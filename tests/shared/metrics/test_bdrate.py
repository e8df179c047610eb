"""BD-rate exactness, non-monotonic handling, and the paired bootstrap on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from shared.metrics.bdrate import BDRateError, ImageSetMismatchError, PerImageCurve, bd_rate, bootstrap_bd_rate

RATES = np.array([0.12, 0.2, 0.35, 0.6, 1.1, 2.0])
ACC = np.array([0.42, 0.58, 0.69, 0.76, 0.80, 0.82])


@pytest.mark.parametrize("factor", [0.8, 0.5, 1.25, 2.0])
@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_constant_rate_factor_gives_that_factor(factor: float, method: str) -> None:
    res = bd_rate(RATES, ACC, RATES * factor, ACC, method)
    assert res.value == pytest.approx((factor - 1) * 100, abs=1e-9)
    assert res.values["pchip"] == pytest.approx(res.values["akima"], abs=1e-9)
    assert res.overlap == (ACC.min(), ACC.max()) and res.overlap_fraction == 1.0


def test_lower_is_better_metric_is_negated() -> None:
    ce = 2.5 - 2 * ACC  # decreasing with rate
    res = bd_rate(RATES, ce, RATES * 0.7, ce, higher_is_better=False)
    assert res.value == pytest.approx(-30.0, abs=1e-9)
    # Without negation the curve would be decreasing and every point but one dominated.
    wrong = bd_rate(RATES, ce, RATES * 0.7, ce, higher_is_better=True)
    assert np.isnan(wrong.value) and len(wrong.dropped_anchor) == 5


def test_order_of_points_does_not_matter() -> None:
    perm = [3, 0, 5, 1, 4, 2]
    a = bd_rate(RATES, ACC, RATES * 0.9, ACC + 0.01)
    b = bd_rate(RATES[perm], ACC[perm], RATES * 0.9, ACC + 0.01)
    assert a.value == b.value


def test_non_monotonic_points_are_dropped_and_listed() -> None:
    acc = ACC.copy()
    acc[3] = 0.68  # below the cheaper point at 0.35 bpp
    res = bd_rate(RATES, ACC, RATES, acc)
    assert [p.index for p in res.dropped_test] == [3]
    assert "dominated" in res.dropped_test[0].reason and res.dropped_test[0].metric == pytest.approx(0.68)
    assert "dropped 0 anchor and 1 test" in res.note
    assert np.isfinite(res.value)
    with pytest.raises(BDRateError, match="non-monotonic"):
        bd_rate(RATES, ACC, RATES, acc, nonmonotonic="error")


def test_no_overlap_is_nan_with_reason() -> None:
    res = bd_rate(RATES, ACC, RATES, ACC + 1.0)
    assert np.isnan(res.value) and "do not overlap" in res.note


def _curves(n_img: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.choice([224 * 224, 227 * 227, 256 * 192], size=n_img).astype(float)
    base_bpp = rng.uniform(0.5, 1.5, size=n_img)
    bits = np.rint(np.outer(RATES, base_bpp) * pixels)  # integer bits, as files have
    correct = (rng.uniform(size=(len(RATES), n_img)) < ACC[:, None]).astype(float)
    return bits, pixels, correct


def test_bootstrap_identical_methods_is_exactly_zero() -> None:
    bits, pixels, correct = _curves()
    a = PerImageCurve(bits, pixels, values=correct)
    res = bootstrap_bd_rate(a, PerImageCurve(bits.copy(), pixels, values=correct.copy()), n=200, seed=3)
    assert res.estimate.value == 0.0
    assert res.low == 0.0 and res.high == 0.0
    assert res.n_failed == 0


def test_bootstrap_known_per_image_shift_is_inside_interval() -> None:
    bits, pixels, correct = _curves()
    a = PerImageCurve(bits, pixels, values=correct)
    # Every image needs exactly 25% fewer bits at every point, same accuracy per image.
    t = PerImageCurve(bits * 0.75, pixels, values=correct)
    res = bootstrap_bd_rate(a, t, n=200, seed=1)
    assert res.estimate.value == pytest.approx(-25.0, abs=1e-9)
    assert res.low <= -25.0 + 1e-9 and res.high >= -25.0 - 1e-9
    assert res.high - res.low < 1e-6


def test_bootstrap_noisy_shift_interval_contains_truth() -> None:
    """Per-image rates shifted by a known factor with independent per-image rate noise: the
    paired interval must contain the true shift and be narrower than an unpaired spread."""
    bits, pixels, correct = _curves(n_img=400, seed=5)
    rng = np.random.default_rng(9)
    noise = rng.lognormal(0.0, 0.05, size=bits.shape)
    noise /= noise.mean()
    a = PerImageCurve(bits, pixels, values=correct)
    t = PerImageCurve(np.rint(bits * 0.8 * noise), pixels, values=correct)
    res = bootstrap_bd_rate(a, t, n=300, seed=2, ci=0.95)
    assert res.low < -20.0 < res.high
    assert res.high - res.low < 5.0


def test_bootstrap_ratio_and_aggregate_metrics() -> None:
    bits, pixels, correct = _curves(n_img=50)
    num, den = 2 * correct, 2 * correct + 1
    a = PerImageCurve(bits, pixels, numerator=num, denominator=den)
    t = PerImageCurve(bits * 2, pixels, numerator=num, denominator=den)
    assert bootstrap_bd_rate(a, t, n=20).estimate.value == pytest.approx(100.0, abs=1e-9)

    def agg(p: int, w: np.ndarray) -> float:
        return float((correct[p] * w).sum() / w.sum())

    ag = PerImageCurve(bits, pixels, aggregate=agg)
    at = PerImageCurve(bits * 0.5, pixels, aggregate=agg)
    r = bootstrap_bd_rate(ag, at, n=20)
    assert r.estimate.value == pytest.approx(-50.0, abs=1e-9) and r.low == pytest.approx(-50.0, abs=1e-9)


def test_bootstrap_rejects_unpaired_inputs() -> None:
    bits, pixels, correct = _curves(n_img=10)
    a = PerImageCurve(bits, pixels, values=correct)
    b = PerImageCurve(bits[:, :5], pixels[:5], values=correct[:, :5])
    with pytest.raises(BDRateError, match="same images"):
        bootstrap_bd_rate(a, b, n=5)


def test_bootstrap_pairs_by_image_id_not_by_position() -> None:
    bits, pixels, correct = _curves(n_img=40)
    ids = [f"img{i:03d}" for i in range(40)]
    a = PerImageCurve(bits, pixels, values=correct, ids=ids)
    order = np.random.default_rng(1).permutation(40)
    shuffled = PerImageCurve(bits[:, order] * 0.5, pixels[order], values=correct[:, order], ids=[ids[i] for i in order])
    r = bootstrap_bd_rate(a, shuffled, n=20)
    assert r.estimate.value == pytest.approx(-50.0, abs=1e-9) and r.high == pytest.approx(-50.0, abs=1e-9)


def test_bootstrap_refuses_other_images_of_the_same_count() -> None:
    bits, pixels, correct = _curves(n_img=10)
    a = PerImageCurve(bits, pixels, values=correct, ids=[f"a{i}" for i in range(10)])
    b = PerImageCurve(bits, pixels, values=correct, ids=[f"a{i}" for i in range(9)] + ["other"])
    with pytest.raises(ImageSetMismatchError, match=r"different images \(1 only in anchor, e.g. a9; 1 only in test"):
        bootstrap_bd_rate(a, b, n=5)
