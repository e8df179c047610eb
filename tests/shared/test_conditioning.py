from __future__ import annotations

from itertools import pairwise

import pytest

from shared.codecs import CODECS
from shared.conditioning import (
    ConditioningError,
    conditioning_codecs,
    conditioning_value,
    equivalent_bpg_qp,
    normalise_qp,
)


def test_bpg_is_the_identity_and_normalises_by_51() -> None:
    assert equivalent_bpg_qp("bpg", 37) == 37.0
    assert conditioning_value("BPG", 51) == 1.0
    assert conditioning_value("bpg", 0) == 0.0
    assert normalise_qp(25.5) == pytest.approx(0.5)


@pytest.mark.parametrize("codec", [c for c in conditioning_codecs() if c != "bpg"])
def test_maps_are_monotone_and_within_the_bpg_scale(codec: str) -> None:
    scale = CODECS.get(codec).quality
    qualities = range(scale.minimum, scale.maximum + 1)
    qps = [equivalent_bpg_qp(codec, q) for q in qualities]
    assert all(0 <= qp <= 51 for qp in qps)
    steps = [b - a for a, b in pairwise(qps)]
    if scale.higher_is_better:
        assert all(s <= 0 for s in steps), "higher quality must map to a lower (finer) QP"
    else:
        assert all(s >= 0 for s in steps)
    assert qps[0] != qps[-1]


def test_every_registered_codec_has_a_map() -> None:
    assert set(conditioning_codecs()) == set(CODECS.names())


def test_interpolates_between_anchors() -> None:
    lo, hi = equivalent_bpg_qp("jpeg", 70), equivalent_bpg_qp("jpeg", 75)
    assert min(lo, hi) < equivalent_bpg_qp("jpeg", 72) < max(lo, hi)


def test_jpeg_75_is_about_bpg_25() -> None:
    """A sanity anchor from the measured table: JPEG q75 spends what BPG spends near QP 25."""
    assert 22 < equivalent_bpg_qp("jpeg", 75) < 28


@pytest.mark.parametrize(("codec", "quality"), [("bpg", 52), ("bpg", -1), ("jpeg", 101), ("vvc", 64)])
def test_out_of_range_quality_is_an_error(codec: str, quality: float) -> None:
    with pytest.raises(ConditioningError, match="outside"):
        conditioning_value(codec, quality)


def test_unknown_codec_is_an_error() -> None:
    with pytest.raises(ConditioningError, match="no conditioning map for codec 'png'"):
        conditioning_value("png", 50)


@pytest.mark.parametrize("codec", ["jpeg", "webp", "avif", "jxl", "vvc"])
def test_valid_qualities_are_exactly_the_codec_scale(codec: str) -> None:
    from shared.codecs import CODECS

    scale = CODECS.get(codec).quality
    conditioning_value(codec, scale.minimum)
    conditioning_value(codec, scale.maximum)
    for q in (scale.minimum - 1, scale.maximum + 1):
        with pytest.raises(ConditioningError, match="outside"):
            conditioning_value(codec, q)
