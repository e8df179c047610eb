"""Measure the codec-quality → equivalent-BPG-QP tables held in ``shared/conditioning.py``.

Why: the QA network is conditioned on a BPG QP, but the edge may run JPEG, WebP, AVIF, JPEG XL
or VVC. "Equivalent" here means *equal rate*: a quality setting maps to the BPG QP whose
geometric-mean bits per pixel over the same images is the same. Rate is the quantity the
network's QP conditioning trades against (the paper's R term), and it is the one property every
codec's knob shares.

Method: the 256×256 centre crops of 12 lossless Kodak images (kodim01, 03, …, 23); every codec at a
grid of settings; mean log2(bpp) per setting; BPG's curve (QP 13..51 step 2, bpgenc defaults, level 8)
inverted by linear interpolation in log-bpp. Regenerate with::

    python -m training.npp.calibrate_conditioning --out conditioning_table.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from shared.imageio import read_rgb
from shared.pipeline import EncodePipeline

_GRIDS: dict[str, list[int]] = {
    "jpeg": [1, 5, 10, 15, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100],
    "webp": [0, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100],
    "avif": [0, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100],
    "jxl": [1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100],
    "vvc": [10, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 63],
}


def _shared_dir() -> Path:
    from shared.paths import shared_data_dir

    return shared_data_dir()


def load_crops(size: int = 256) -> list[np.ndarray]:
    """The size×size centre crops of every other Kodak image (lossless sources: no prior coding noise)."""
    folder = _shared_dir() / "data" / "kodak"
    files = sorted(folder.glob("kodim*.png"))[::2]  # 12 images: enough for a mean rate curve
    if not files:
        raise FileNotFoundError(f"no Kodak PNGs in {folder} (set PREPICM_SHARED_DIR)")
    crops = []
    for f in files:
        rgb = read_rgb(f)
        h, w = rgb.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        crops.append(np.ascontiguousarray(rgb[top : top + size, left : left + size]))
    return crops


def mean_log2_bpp(codec_name: str, qualities: list[int], crops: list[np.ndarray]) -> dict[int, float]:
    pipe = EncodePipeline(codec_name)
    out = {}
    for q in qualities:
        try:
            logs = [math.log2(pipe.encode(c, q).bpp) for c in crops]
        except Exception as exc:
            print(f"{codec_name} quality {q} dropped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        out[q] = float(np.mean(logs))
    return out


def equivalent_qp(bpg_curve: dict[int, float], log_bpp: float) -> float:
    """The (fractional) BPG QP with this mean log2 bpp; clamped to 0..51."""
    qps = np.array(sorted(bpg_curve), dtype=float)
    rates = np.array([bpg_curve[int(q)] for q in qps])
    # BPG's rate falls as QP rises; np.interp wants increasing x, so interpolate on reversed arrays.
    return float(np.clip(np.interp(log_bpp, rates[::-1], qps[::-1]), 0.0, 51.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--codecs", nargs="*", default=list(_GRIDS))
    parser.add_argument("--bpg-curve", type=Path, help="reuse the bpg_log2_bpp of an earlier --out")
    args = parser.parse_args(argv)
    crops = load_crops()
    if args.bpg_curve:
        bpg = {int(k): v for k, v in json.loads(args.bpg_curve.read_text())["bpg_log2_bpp"].items()}
    else:
        bpg = mean_log2_bpp("bpg", list(range(13, 52, 2)), crops)
    print("bpg", bpg, file=sys.stderr, flush=True)
    result: dict[str, object] = {"bpg_log2_bpp": bpg, "images": len(crops), "tables": {}}
    tables: dict[str, list[tuple[int, float]]] = {}
    for name in args.codecs:
        curve = mean_log2_bpp(name, _GRIDS[name], crops)
        tables[name] = [(q, round(equivalent_qp(bpg, r), 2)) for q, r in curve.items()]
        print(name, tables[name], file=sys.stderr, flush=True)
    result["tables"] = tables
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
