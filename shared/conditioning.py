"""Codec operating point → the NPP's conditioning scalar.

The quantization-adaptive NPP is conditioned on the BPG QP it will be coded at (Lu et al.,
"Preprocessing Enhanced Image Compression for Machine Vision", TCSVT 2024). The
network input is ``cond = qp_equiv / 51`` in [0, 1] (0 = finest, 1 = coarsest), where
``qp_equiv`` is the QP itself for BPG and, for every other codec, the *rate-equivalent* BPG QP:
the BPG QP whose geometric-mean bits per pixel over the same images equals that codec's at the
given quality. Equal values therefore mean roughly equal bpp, which is what the network's
conditioning trades against (the R term of its loss).

The tables below were measured, not guessed: the 256×256 centre crops of 12 lossless Kodak
images (kodim01, 03, …, 23), each codec at its default settings here (BPG: bpgenc defaults, level 8;
JPEG optimize, 4:2:0; WebP method 6; AVIF speed 6; JPEG XL effort 7; VVC vvenc fast, qpa 0), mean
log2 bpp per setting, BPG's curve inverted by linear interpolation. Regenerate with
``python -m training.npp.calibrate_conditioning --out table.json``. Between anchors the map is
piecewise linear; it is monotone (higher quality → lower QP) by construction and clamped to 0..51.
Rates of different codecs track each other only roughly across images, so this is an average
correspondence, not a per-image one.

Valid quality settings come from each codec's :class:`shared.codecs.QualityScale`, the one place
they are defined. The edge imports this module without training code.
"""

from __future__ import annotations

from bisect import bisect_right

BPG_QP_MAX = 51
CONDITIONING_KIND = "bpg_qp_normalised"
CONDITIONING_FORMULA = "cond = qp_equiv / 51, qp_equiv = BPG QP (or the rate-equivalent BPG QP)"

#: (codec quality, rate-equivalent BPG QP) anchors, quality ascending. See the module docstring.
#: Measured with the codec settings named above; BPG's curve was measured at QP 13..51, so
#: settings that spend more bits than BPG QP 13 clamp to 13. JPEG XL's top anchor is 95 (its scale
#: ends at 99; values above 95 hold 16.47).
_TABLES: dict[str, tuple[tuple[int, float], ...]] = {
    "jpeg": ((1, 45.67), (5, 42.81), (10, 39.1), (15, 36.78), (20, 35.16), (30, 32.82), (40, 31.02),
             (50, 29.54), (60, 28.14), (70, 26.23), (75, 25.08), (80, 23.53), (85, 21.74), (90, 19.19),
             (95, 14.67), (100, 13.0)),
    "webp": ((0, 45.08), (5, 40.21), (10, 38.68), (20, 36.51), (30, 34.76), (40, 33.27), (50, 31.98),
             (60, 30.74), (70, 29.5), (75, 28.83), (80, 26.77), (85, 24.32), (90, 21.2), (95, 17.03),
             (100, 13.0)),
    "avif": ((0, 46.34), (5, 45.97), (10, 44.3), (20, 41.85), (30, 39.31), (40, 36.47), (50, 33.14),
             (60, 29.6), (70, 26.13), (75, 24.65), (80, 22.94), (85, 21.53), (90, 18.59), (95, 14.74),
             (100, 13.0)),
    "jxl": ((1, 41.75), (5, 40.32), (10, 38.83), (20, 37.48), (30, 35.27), (40, 34.34), (50, 33.24),
            (60, 31.34), (70, 29.17), (75, 27.84), (80, 26.09), (85, 23.84), (90, 21.15), (95, 16.47)),
    # VVC QP tracks BPG QP closely at equal rate; above ~55 VVC spends less than BPG QP 51 does.
    "vvc": ((0, 13.0), (10, 13.0), (16, 16.48), (20, 20.29), (24, 24.42), (28, 28.33), (32, 32.13),
            (36, 35.81), (40, 39.63), (44, 43.27), (48, 46.87), (52, 50.02), (56, 51.0), (63, 51.0)),
}


class ConditioningError(ValueError):
    """A codec or quality that has no defined conditioning value."""


def conditioning_codecs() -> list[str]:
    """Codecs that have a quality → conditioning map."""
    return ["bpg", *sorted(_TABLES)]


def _interp(table: tuple[tuple[int, float], ...], q: float) -> float:
    xs = [a for a, _ in table]
    if q <= xs[0]:
        return table[0][1]
    if q >= xs[-1]:
        return table[-1][1]
    i = bisect_right(xs, q) - 1
    (x0, y0), (x1, y1) = table[i], table[i + 1]
    return y0 + (y1 - y0) * (q - x0) / (x1 - x0)


def equivalent_bpg_qp(codec: str, quality: float) -> float:
    """The BPG QP (0..51, fractional) at which BPG spends about the bits ``codec`` does at ``quality``."""
    name = codec.lower()
    if name == "bpg":
        if not 0 <= quality <= BPG_QP_MAX:
            raise ConditioningError(f"BPG QP {quality} is outside 0..{BPG_QP_MAX}")
        return float(quality)
    table = _TABLES.get(name)
    if table is None:
        raise ConditioningError(
            f"no conditioning map for codec {codec!r}; known: {', '.join(conditioning_codecs())}"
        )
    from shared.codecs import CODECS

    scale = CODECS.get(name).quality
    lo, hi = scale.minimum, scale.maximum
    if not lo <= quality <= hi:
        raise ConditioningError(f"{name} quality {quality} is outside {lo}..{hi}")
    return min(max(_interp(table, float(quality)), 0.0), float(BPG_QP_MAX))


def normalise_qp(qp: float) -> float:
    """BPG QP → the network's conditioning input in [0, 1]."""
    if not 0 <= qp <= BPG_QP_MAX:
        raise ConditioningError(f"BPG QP {qp} is outside 0..{BPG_QP_MAX}")
    return float(qp) / BPG_QP_MAX


def conditioning_value(codec: str, quality: float) -> float:
    """The conditioning input for coding with ``codec`` at ``quality``."""
    return normalise_qp(equivalent_bpg_qp(codec, quality))

