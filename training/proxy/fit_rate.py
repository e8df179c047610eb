"""Fit the proxy's rate model (and pick its block size, intra modes and dead-zone) to real BPG.

What it does, all on CPU:

1. real file bits of the fit set (training.proxy.data.fit_samples: Kodak crops and ImageNet train
   crops, no held-out image) at every q in ``FIT_QPS``, from the real codec through
   ``shared.pipeline.round_trip_batch`` (cached);
2. for each candidate configuration (block size × intra modes), the proxy's rate features of
   every third fit image at every q, a per-q non-negative least-squares fit on relative error,
   and its 5-fold cross-validated error (mean |ln(proxy/real)|) and per-q Pearson correlation,
   each at its own dead-zone rounding offset: the one whose reconstruction is closest (PSNR) to
   the real decoded pictures of the 24 Kodak centre crops (q 22, 31, 40, 46);
3. the choice: the lowest cross-validated rate error, or among candidates within 5% of it the
   one with the closest reconstruction;
4. that configuration refitted on all images, written as JSON.

    python -m training.proxy.fit_rate --out training/proxy/bpg_proxy_params.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from shared.codecs.bpg.codec import BpgCodec
from shared.pipeline import EncoderPool, round_trip_batch
from training.proxy.data import FIT_QPS, Sample, fit_samples, real_bits
from training.proxy.model import BpgProxy
from training.proxy.rate import DEFAULT_PARAMS, ProxyParams, feature_names

#: Candidate configurations: (block size, intra modes).
CANDIDATES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (4, ("flat", "dc", "planar", "horizontal", "vertical")),
    (8, ("flat",)),
    (8, ("flat", "dc", "planar", "horizontal", "vertical")),
)
OFFSETS = (0.5, 0.4, 1 / 3, 0.25, 0.15)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255.0)


def _dummy(block: int, modes: tuple[str, ...], offset: float) -> ProxyParams:
    n = len(feature_names())
    return ProxyParams(block_size=block, modes=modes, deadzone_offset=offset, qualities=[0.0, 51.0],
                       coefficients=[[0.0] * n, [0.0] * n])


@torch.no_grad()
def features(samples: Sequence[Sample], qps: Sequence[int], params: ProxyParams, batch: int = 32) -> np.ndarray:
    """(Q, images, F) rate features with the hard quantiser."""
    proxy = BpgProxy(params, quantiser="hard")
    out = np.zeros((len(qps), len(samples), len(params.features)))
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(samples):
        by_shape.setdefault(s.rgb.shape, []).append(i)
    for idx in by_shape.values():
        for start in range(0, len(idx), batch):
            part = idx[start : start + batch]
            x = torch.stack([to_tensor(samples[i].rgb) for i in part])
            for k, q in enumerate(qps):
                out[k, part] = proxy(x, q)["features"].double().numpy()
    return out


def fit_nnls(feats: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Non-negative weights minimising Σ ((feats·w − bits)/bits)²."""
    a = feats / bits[:, None]
    scale = np.maximum(np.abs(a).max(0), 1e-12)  # column scaling for conditioning
    w, _ = nnls(a / scale, np.ones(len(bits)), maxiter=5000)
    return w / scale


def cross_validate(feats: np.ndarray, bits: dict[int, np.ndarray], qps: Sequence[int], folds: int = 5,
                   seed: int = 0) -> dict[str, object]:
    """Held-out |ln(pred/real)| (mean over images and q) and per-q Pearson r of held-out predictions."""
    n = feats.shape[1]
    order = np.random.default_rng(seed).permutation(n)
    pred = np.zeros((len(qps), n))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        for k, q in enumerate(qps):
            w = fit_nnls(feats[k, train], bits[q][train].astype(float))
            pred[k, test] = feats[k, test] @ w
    real = np.stack([bits[q] for q in qps]).astype(float)
    err = np.abs(np.log(np.maximum(pred, 1.0) / real))
    return {"mean_abs_log_error": float(err.mean()),
            "pearson": {int(q): float(np.corrcoef(pred[k], real[k])[0, 1]) for k, q in enumerate(qps)}}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def real_reconstructions(samples: Sequence[Sample], qps: Sequence[int], level: int,
                         workers: int) -> dict[int, list[np.ndarray]]:
    codec = BpgCodec(level=level)
    with EncoderPool(workers=workers) as pool:
        return {q: round_trip_batch([s.rgb for s in samples], codec, q, pool=pool)[0] for q in qps}


@torch.no_grad()
def reconstruction_psnr(samples: Sequence[Sample], real: dict[int, list[np.ndarray]], params: ProxyParams) -> float:
    """Mean PSNR (dB) between the proxy's and the real codec's reconstructions."""
    x = torch.stack([to_tensor(s.rgb) for s in samples])
    proxy = BpgProxy(params, quantiser="hard")
    vals = []
    for q, decoded in real.items():
        xh = (proxy(x, q)["x_hat"] * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        vals += [psnr(xh[i], decoded[i]) for i in range(len(samples))]
    return float(np.mean(vals))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_PARAMS)
    ap.add_argument("--level", type=int, default=8, help="BPG compression level (bpgenc -m), default 8")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--imagenet", type=int, default=300, help="ImageNet train crops in the fit set")
    ap.add_argument("--select-every", type=int, default=3,
                    help="compare candidates on every n-th fit image (the final fit uses all)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    samples = fit_samples(n_imagenet=args.imagenet)
    bits = real_bits(samples, FIT_QPS, level=args.level, workers=args.workers)
    print(f"{len(samples)} fit images, real bits at q {list(FIT_QPS)} ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    kodak_centres = [s for s in samples if s.id.endswith("/c256")]
    real = real_reconstructions(kodak_centres, (22, 31, 40, 46), args.level, args.workers)
    report: dict[str, dict[str, object]] = {}
    sub = list(range(0, len(samples), args.select_every))
    sub_bits = {q: b[sub] for q, b in bits.items()}
    for block, modes in CANDIDATES:
        offsets = {off: reconstruction_psnr(kodak_centres, real, _dummy(block, modes, off)) for off in OFFSETS}
        off = max(offsets, key=lambda o: offsets[o])
        feats_sub = features([samples[i] for i in sub], FIT_QPS, _dummy(block, modes, off))
        cv = cross_validate(feats_sub, sub_bits, FIT_QPS)
        name = f"b{block}-{'+'.join(modes)}"
        report[name] = {"block_size": block, "modes": list(modes), "deadzone_offset": off,
                        "psnr_vs_bpg_db_by_offset": {f"{k:.3f}": v for k, v in offsets.items()},
                        "psnr_vs_bpg_db": offsets[off], **cv}
        print(f"{name} ({len(sub)} images): offset {off:.3f}; held-out mean |ln(proxy/real)| "
              f"{cv['mean_abs_log_error']:.4f}; PSNR(proxy, BPG) {offsets[off]:.2f} dB (by offset {offsets}); "
              f"Pearson r by q {cv['pearson']}", file=sys.stderr)
    # Rate error first; among candidates within 5% of the best, the closest reconstruction.
    best_err = min(float(r["mean_abs_log_error"]) for r in report.values())  # type: ignore[arg-type]
    close = [r for r in report.values() if float(r["mean_abs_log_error"]) <= 1.05 * best_err]  # type: ignore[arg-type]
    chosen = max(close, key=lambda r: float(r["psnr_vs_bpg_db"]))  # type: ignore[arg-type]
    block, modes = int(chosen["block_size"]), tuple(chosen["modes"])  # type: ignore[arg-type, call-overload]
    offset = float(chosen["deadzone_offset"])  # type: ignore[arg-type]
    feats = features(samples, FIT_QPS, _dummy(block, modes, offset))
    final_cv = cross_validate(feats, bits, FIT_QPS)
    coefs = [fit_nnls(feats[k], bits[q].astype(float)).tolist() for k, q in enumerate(FIT_QPS)]
    params = ProxyParams(
        block_size=block, modes=modes, deadzone_offset=float(offset), qualities=[float(q) for q in FIT_QPS],
        coefficients=coefs,
        fit={"codec": BpgCodec(level=args.level).settings(), "images": len(samples),
             "image_sets": "24 Kodak × 3 crops 256 (centre, top-left, bottom-right); ImageNet train "
                           f"{args.imagenet} centre crops 224 (sorted files 200..{199 + args.imagenet})",
             "candidates": report, "selected_on": f"every {args.select_every}th fit image",
             "cross_validated": final_cv,
             "command": "python -m training.proxy.fit_rate"},
    )
    params.save(args.out)
    print(f"wrote {args.out}: block {block}, modes {modes}, offset {offset:.3f}; cross-validated {final_cv} "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
