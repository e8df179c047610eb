"""How many bits does BPG spend on pixels the classifier never reads?

    python benchmarks/unread_border.py                 # 200 held-out pictures, q 26..42
    python benchmarks/unread_border.py --images 50     # a quick look

EfficientNet-Lite0 and MobileNetV2 resize a picture's shorter side to 256 and read the centre
224×224 of that, so of an ImageNet val picture (227×227) only the centre ~199×199 reaches the
network: 23% of its pixels are coded, sent and never read. This replaces the unread frame (less a
margin for the resampling filter's reach) by the edge pixels of the read region repeated outwards
— content HEVC's angular intra prediction codes for almost nothing — and measures the BD-rate at
equal KL against plain BPG on the same pictures.

It is a yardstick for NPP results, not a method: any preprocessor that can tell where the frame
is (the paper's U-Net can, through its zero padding) could earn this much on ImageNet by blanking
the frame, and a fleet whose cloud model centre-crops would get it more simply by cropping at the
edge. A translation-equivariant filter (``local_qa``) cannot. Pictures: ImageNet train images
0..N−1 squashed to 227×227 as the val pictures are — the NPP runs' held-out set, never trained on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from shared.codecs.bpg.codec import BpgCodec  # noqa: E402
from shared.pipeline import EncoderPool  # noqa: E402
from shared.tasks import get_task  # noqa: E402
from training.train.config import DataConfig  # noqa: E402
from training.train.data import TrainImages  # noqa: E402
from training.train.validate import Validator  # noqa: E402

QUALITIES = (26, 30, 34, 38, 42)
TASKS = ("efficientnet_lite0", "mobilenet_v2")


def keep_window(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """The window's content, its edge pixels repeated out to the picture's border."""
    inner = x[..., lo:hi, lo:hi]
    h = x.shape[-1]
    return F.pad(inner, [lo, h - hi, lo, h - hi], mode="replicate")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200, help="held-out ImageNet train pictures 0..N-1")
    ap.add_argument("--size", type=int, default=227, help="pictures squashed to size×size (ImageNet val: 227)")
    ap.add_argument("--margin", type=int, default=2, help="pixels kept beyond the read window (bicubic reach)")
    ap.add_argument("--qualities", type=int, nargs="+", default=list(QUALITIES))
    ap.add_argument("--level", type=int, default=8, help="BPG encoder level")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "unread_border")
    args = ap.parse_args(argv)

    tasks = {name: get_task(name) for name in TASKS}
    windows = {t.preprocess.read_window(args.size, args.margin) for t in tasks.values()}  # type: ignore[attr-defined]
    lo, hi = min(w[0] for w in windows), max(w[1] for w in windows)
    cfg = DataConfig(first=args.images, count=1, holdout_first=0, holdout_count=args.images,
                     resize=args.size, crop=args.size)
    held = TrainImages(cfg, 0, (args.qualities[0], args.qualities[-1])).holdout()
    x, ids = held.x, held.ids
    codec = BpgCodec(level=args.level)
    t0 = time.perf_counter()
    with EncoderPool(workers=args.workers) as pool:
        validator = Validator(x, ids, args.qualities, codec, tasks, pool=pool, bootstrap=args.bootstrap)
        result = validator.run(lambda xs, _q: keep_window(xs, lo, hi))
    plain, kept = result.plain, result.npp
    wall = time.perf_counter() - t0

    unread = 1.0 - ((hi - lo) / args.size) ** 2
    lines = [f"# Bits on pixels the classifier never reads: {len(ids)} held-out ImageNet train pictures squashed to "
             f"{args.size}×{args.size}, BPG level {args.level}", "",
             f"`python benchmarks/unread_border.py --images {args.images}` — {wall / 60:.1f} min wall. "
             f"Read window (both classifiers, ±{args.margin} px): rows and columns {lo}..{hi - 1}; the frame "
             f"outside it, {100 * unread:.1f}% of the pixels, is replaced by the window's edge pixels repeated "
             "outwards.", "",
             "| q | bpp plain | bpp frame flattened | KL Lite0 plain | KL Lite0 flattened | KL MNv2 plain | "
             "KL MNv2 flattened |", "|---|---|---|---|---|---|---|"]
    for p, q in enumerate(args.qualities):
        kls = " | ".join(f"{s.kl[name][p].mean():.4f}" for name in TASKS for s in (plain, kept))
        lines.append(f"| {q} | {plain.bpp()[p]:.4f} | {kept.bpp()[p]:.4f} | {kls} |")
    lines += ["", "| task | BD-rate at equal KL (90% paired bootstrap) | BD-rate at equal top-1 agreement |",
              "|---|---|---|"]
    summary: dict[str, object] = {"images": list(ids), "qualities": args.qualities, "window": [lo, hi],
                                  "unread_fraction": unread, "wall_s": wall}
    for name in TASKS:
        kl, ag = result.bd_kl[name], result.bd_agreement[name]
        lines.append(f"| {name} | {kl.describe()} | {ag.describe()} |")
        summary[name] = {"bd_kl": kl.to_json(), "bd_agreement": ag.to_json()}
    summary["bpp_plain"], summary["bpp_flattened"] = plain.bpp().tolist(), kept.bpp().tolist()
    write_report(args.out, "\n".join(lines) + "\n", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
