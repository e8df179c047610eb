"""How closely the differentiable BPG proxy (training.proxy) tracks the real BPG codec.

    python benchmarks/proxy_fidelity.py                 # Kodak 24 + ImageNet train 0..199, level 8
    python benchmarks/proxy_fidelity.py --imagenet 50 --qps 27 37 --level 8

Per image set and per bpgenc q, on whole pictures:

- Pearson r of the proxy's bits against the real file bits, per image (and of their logs, and of
  bits per pixel: pictures differ in size, which alone correlates bits);
- mean |ln(proxy bits / real bits)| and the ratio of total bits (proxy / real);
- PSNR between the proxy's and the real codec's reconstructions (mean over images, dB);
- PSNR of each against the source (mean over images, ``shared.metrics.image.mean_psnr``);

and per set the proxy-vs-BPG BD-rate at equal PSNR (``shared.metrics.bdrate.bd_rate``, PCHIP; rate =
Σ bits / Σ pixels per q; negative = the proxy claims fewer bits than BPG for the same PSNR).

ImageNet train images 0..199 are held out from the rate model's fit; Kodak crops are in it, so
the Kodak rows are partly in-sample. Real bits and pixels come from
``shared.pipeline.round_trip_batch`` (the one encode path) in an ``EncoderPool``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.codecs.bpg.codec import BpgCodec  # noqa: E402
from shared.metrics.bdrate import bd_rate  # noqa: E402
from shared.metrics.image import capped_psnr, mean_psnr  # noqa: E402
from shared.pipeline import EncoderPool, round_trip_batch  # noqa: E402
from training.proxy.data import Sample, imagenet_holdout_samples, kodak_samples  # noqa: E402
from training.proxy.model import BpgProxy  # noqa: E402

QPS = (22, 27, 32, 37, 42, 46)


@torch.no_grad()
def proxy_pass(proxy: BpgProxy, rgb: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
    out = proxy(x, q, quantiser="hard")
    xh = (out["x_hat"][0] * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return xh, float(out["bits"][0])


def measure(name: str, samples: list[Sample], qps: tuple[int, ...], proxy: BpgProxy, pool: EncoderPool,
            codec: BpgCodec) -> dict[str, object]:
    rows = []
    pixels = float(sum(s.rgb.shape[0] * s.rgb.shape[1] for s in samples))
    for q in qps:
        t0 = time.perf_counter()
        decoded, real_bits = round_trip_batch([s.rgb for s in samples], codec, q, pool=pool)
        p_bits, p_vs_src, r_vs_src = [], [], []
        for s, dec in zip(samples, decoded, strict=True):
            xh, b = proxy_pass(proxy, s.rgb, q)
            p_bits.append(b)
            p_vs_src.append(xh)
            r_vs_src.append(dec)
        pb, rb = np.asarray(p_bits), real_bits.astype(float)
        px = np.asarray([s.rgb.shape[0] * s.rgb.shape[1] for s in samples], dtype=float)
        rows.append({
            "q": q,
            "pearson_bits": float(np.corrcoef(pb, rb)[0, 1]),
            "pearson_log_bits": float(np.corrcoef(np.log(np.maximum(pb, 1)), np.log(rb))[0, 1]),
            "pearson_bpp": float(np.corrcoef(pb / px, rb / px)[0, 1]),
            "mean_abs_log_ratio": float(np.mean(np.abs(np.log(np.maximum(pb, 1) / rb)))),
            "total_bits_ratio": float(pb.sum() / rb.sum()),
            "psnr_proxy_vs_bpg_db": mean_psnr([capped_psnr(a, b) for a, b in zip(p_vs_src, r_vs_src, strict=True)]),
            "bpp_bpg": float(rb.sum() / pixels),
            "bpp_proxy": float(pb.sum() / pixels),
            "psnr_bpg_db": mean_psnr([capped_psnr(s.rgb, d) for s, d in zip(samples, r_vs_src, strict=True)]),
            "psnr_proxy_db": mean_psnr([capped_psnr(s.rgb, d) for s, d in zip(samples, p_vs_src, strict=True)]),
        })
        print(f"{name} q{q}: {json.dumps(rows[-1])} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    bd = bd_rate([r["bpp_bpg"] for r in rows], [r["psnr_bpg_db"] for r in rows],
                 [r["bpp_proxy"] for r in rows], [r["psnr_proxy_db"] for r in rows])
    return {"set": name, "images": len(samples), "rows": rows, "bd_rate_psnr_pct": bd.value,
            "bd_rate_psnr_akima_pct": bd.values.get("akima"), "bd_note": bd.note}


def table(results: list[dict[str, object]], level: int) -> str:
    lines = [f"BPG level {level} (x265 {BpgCodec(level=level).settings()['preset']}), proxy "
             "training/proxy/bpg_proxy_params.json, hard quantiser; whole pictures", "",
             "| set | q | Pearson r bits | r log-bits | r bpp | mean abs ln(proxy/real) | Σbits proxy/real | "
             "PSNR proxy↔BPG dB | bpp BPG | bpp proxy | PSNR BPG dB | PSNR proxy dB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for r in res["rows"]:  # type: ignore[attr-defined]
            lines.append(
                f"| {res['set']} | {r['q']} | {r['pearson_bits']:.3f} | {r['pearson_log_bits']:.3f} | "
                f"{r['pearson_bpp']:.3f} | "
                f"{r['mean_abs_log_ratio']:.3f} | {r['total_bits_ratio']:.3f} | {r['psnr_proxy_vs_bpg_db']:.2f} | "
                f"{r['bpp_bpg']:.4f} | {r['bpp_proxy']:.4f} | {r['psnr_bpg_db']:.2f} | {r['psnr_proxy_db']:.2f} |")
    lines.append("")
    for res in results:
        note = f" ({res['bd_note']})" if res["bd_note"] else ""
        lines.append(f"- {res['set']} ({res['images']} images): proxy-vs-BPG BD-rate at equal PSNR "
                     f"{res['bd_rate_psnr_pct']:+.1f}% (PCHIP; Akima {res['bd_rate_psnr_akima_pct']:+.1f}%){note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imagenet", type=int, default=200, help="held-out ImageNet train images (≤ 200)")
    ap.add_argument("--kodak", type=int, default=24)
    ap.add_argument("--qps", type=int, nargs="*", default=list(QPS))
    ap.add_argument("--level", type=int, default=8, help="BPG compression level (bpgenc -m)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # the codec workers have the other cores
    proxy = BpgProxy()
    codec = BpgCodec(level=args.level)
    sets = [("kodak", kodak_samples()[: args.kodak]),
            ("imagenet-train-heldout", imagenet_holdout_samples(args.imagenet))]
    results = []
    with EncoderPool(workers=args.workers) as pool:
        for name, samples in sets:
            if samples:
                results.append(measure(name, samples, tuple(args.qps), proxy, pool, codec))
    text = table(results, args.level)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"level": args.level, "results": results}, indent=1, default=str))
    return 0 if all(math.isfinite(float(r["bd_rate_psnr_pct"])) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
