"""Sweep speed: the BPG ImageNet sweep (6 QPs × N val images, EfficientNet-Lite0) cold and warm.

Targets: ≤ 20 min cold cache, ≤ 2 min warm cache on 2 cores for 1000 images.

    .venv/bin/python benchmarks/eval_sweep.py --out results/baselines/imagenet_efficientnet_lite0/bpg \
        --cache-dir ~/.cache/prepicm/eval_bench

The cold run writes its results to --out (they are the BPG baseline); the warm run repeats the same
sweep into a temporary folder with the now-warm cache (so every encode is a cache hit and nothing
is resumed). Prints a table; asserts nothing.

The machine may be shared: besides wall time the table gives the CPU seconds the sweep used
(this process + its encoder processes, from getrusage) and ``CPU s / cores``, the wall time the same
work needs on an otherwise idle machine with that many cores (a lower bound: it assumes perfect
overlap of encoding and inference).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from evaluation.sweep import CodecSpec, SweepConfig, run_sweep
from shared.paths import shared_data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache-dir", required=True, help="fresh folder for a cold run (deleted first with --fresh)")
    ap.add_argument("--fresh", action="store_true", help="delete --cache-dir and --out first (true cold start)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--qps", default="22,27,32,37,42,46")
    ap.add_argument("--level", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-warm", action="store_true")
    args = ap.parse_args()
    if args.fresh:
        shutil.rmtree(args.cache_dir, ignore_errors=True)
        shutil.rmtree(args.out, ignore_errors=True)
    qps = [int(q) for q in args.qps.split(",")]
    root = shared_data_dir() / "data" / "imagenet" / "val"

    def config(out: str) -> SweepConfig:
        return SweepConfig("imagenet_folder", str(root), "efficientnet_lite0",
                           [CodecSpec("bpg", qps, {"level": args.level})], out=out, limit=args.limit,
                           cache_dir=args.cache_dir, workers=args.workers, progress=True)

    def cpu_seconds() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):  # children: reaped pool workers
            r = resource.getrusage(who)
            total += r.ru_utime + r.ru_stime
        return total

    rows = []
    t, c = time.perf_counter(), cpu_seconds()
    cold = run_sweep(config(args.out))
    rows.append(("cold" if cold.stats.cache_hits == 0 else "partly warm", time.perf_counter() - t,
                 cpu_seconds() - c, cold.stats))
    if not args.skip_warm:
        with tempfile.TemporaryDirectory() as tmp:
            t, c = time.perf_counter(), cpu_seconds()
            warm = run_sweep(config(str(Path(tmp) / "warm")))
            rows.append(("warm", time.perf_counter() - t, cpu_seconds() - c, warm.stats))
    n = cold.summary["dataset"]["n_images"]
    print(f"\nBPG level {args.level}, QPs {qps}, {n} images, efficientnet_lite0, workers {args.workers}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"load avg at end {os.getloadavg()[0]:.1f}")
    cores = os.cpu_count() or 1
    print(f"| run | wall s | CPU s | CPU s / {cores} cores | points computed | encodes | cache hits |")
    print("|---|---|---|---|---|---|---|")
    for name, secs, cpu, s in rows:
        print(f"| {name} | {secs:.1f} | {cpu:.1f} | {cpu / cores:.1f} | {s.points_computed} | {s.images_encoded} "
              f"| {s.cache_hits} |")


if __name__ == "__main__":
    main()
