"""BPG speed: our full encode vs x265 alone on the same YUV frame; mux/demux and decode times.

Usage: python benchmarks/bpg_speed.py [--images DIR] [--limit 6] [--repeats 3] [--qp 29]

Our encode = RGB→YCbCr + chroma filter + padding + x265 + muxing; "x265 direct" = encoding the
already-prepared YUV planes with libx265 through PyAV with the same settings. Measurements are
interleaved (ours, direct, ours, ...) so machine noise hits both alike; the ratio is of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from evaluation.bench import default_images
from shared.codecs import get_codec
from shared.codecs.bpg.codec import X265_PRESETS, BpgCodec, decode_hevc, x265_annexb
from shared.imageio import list_images, read_rgb


def _ms(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1e3, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--qp", type=int, default=29)
    ap.add_argument("--level", type=int, default=8)
    args = ap.parse_args()
    paths = list_images(args.images) if args.images else default_images()
    paths = [p for p in paths if read_rgb(p).shape[:2] == (512, 768)][: args.limit] or paths[: args.limit]
    bpg = get_codec("bpg", level=args.level)
    assert isinstance(bpg, BpgCodec)
    preset = X265_PRESETS[args.level]
    ours, direct, prep, mux, demux, dec, hevc_dec = [], [], [], [], [], [], []
    for path in paths:
        rgb = read_rgb(path)
        planes, _ = bpg.yuv_planes(rgb)
        for _ in range(args.repeats):
            t, data = _ms(bpg.encode, rgb, args.qp)
            ours.append(t)
            t, annexb = _ms(x265_annexb, planes, "yuv420p", args.qp, preset, "ssim")
            direct.append(t)
            prep.append(_ms(bpg.yuv_planes, rgb)[0])
            mux.append(_ms(bpg.mux, annexb, rgb.shape[1], rgb.shape[0])[0])
            t, _ = _ms(bpg.demux, data)
            demux.append(t)
            dec.append(_ms(bpg.decode, data)[0])
            hevc_dec.append(_ms(decode_hevc, annexb)[0])
    med = statistics.median
    p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
    print(f"BPG speed on {len(paths)} images of {read_rgb(paths[0]).shape[1]}x{read_rgb(paths[0]).shape[0]} "
          f"from {Path(paths[0]).parent}, q={args.qp}, level {args.level} ({preset}, tune ssim), "
          f"{args.repeats} repeats, interleaved\n")
    print("| step | median ms | p90 ms |")
    print("|---|---|---|")
    for name, xs in [("our BPG encode (RGB → .bpg)", ours), ("x265 direct on the same YUV (PyAV)", direct),
                     ("  colour conversion + chroma filter + padding", prep), ("  mux (Annex-B → .bpg)", mux),
                     ("  demux (.bpg → Annex-B with rebuilt VPS/SPS)", demux),
                     ("our BPG decode (.bpg → RGB)", dec), ("  libavcodec HEVC decode alone", hevc_dec)]:
        print(f"| {name} | {med(xs):.2f} | {p90(xs):.2f} |")
    print(f"\nencode time ratio ours / x265 direct (medians): {med(ours) / med(direct):.3f}  (target ≤ 1.15)")
    print(f"mux + demux (medians): {med(mux) + med(demux):.3f} ms  (target < 2 ms)")
    print(f"decode median: {med(dec):.2f} ms  (target < 25 ms)")


if __name__ == "__main__":
    main()
