"""Is the training gradient a descent direction for the real loss, and how much of it is noise?

    python benchmarks/npp_gradient_check.py                   # three settings, 24 + 16 batches each
    python benchmarks/npp_gradient_check.py --batches 6 --fresh 4 --steps 0.3 1   # a quick look

For each setting (an NPP at given weights) and K independent training batches of b images:

1. **Noise scale.** The gradient of the training loss exactly as ``training.train.loop``
   computes it (real BPG forward, proxy backward, λ(q) at the codec's slope, β·pixel MSE). With
   G the expected gradient and Σ the per-image covariance, E|g_b|² = |G|² + tr Σ / b, so the K
   batch gradients give unbiased |G|² and tr Σ, and the simple noise scale B = tr Σ / |G|²
   (McCandlish et al., "An Empirical Model of Large-Batch Training", 2018): the batch size at
   which a step is half signal; with a jackknife s.e. of |G|², a lower bound on B (|G|² at its
   estimate + 2 s.e.) for when no signal is detected. Also the mean cosine between different batches' gradients, and
   per batch the cosine with the gradient when the proxy is in the forward pass too.
2. **Descent check.** Step the weights along −Ĝ (Ĝ the mean of the K gradients) and score the
   real loss — real codec, forward only — on M *fresh* batches, as a ratio to the plain codec's
   loss on the same batch (so the batches' content cancels). A step of length t is sized so that
   t·|Ĝ| is 1%, 3%, 10% or 30% of the plain codec's loss; since noise inflates |Ĝ|, that is an
   upper bound on what the step saves to first order, and the first-order saving estimated
   without the noise's bias, t·|G|²/|Ĝ|, is printed beside each. If the proxy's gradient points
   downhill for the real codec, the small steps save about that much.

Settings: the signed U-Net at the identity and after 1,675 steps (the committed 227 checkpoint),
and the local filter at the identity; all at the evaluation's scale (pictures squashed to 227).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from shared.codecs.bpg.codec import BpgCodec  # noqa: E402
from shared.pipeline import EncoderPool  # noqa: E402
from shared.tasks import get_task  # noqa: E402
from training.npp import build_npp  # noqa: E402
from training.proxy.model import BpgProxy  # noqa: E402
from training.proxy.real_codec import StraightThroughCodec  # noqa: E402
from training.train.config import TrainConfig, load_config, resolve_path  # noqa: E402
from training.train.data import TrainImages, bpg_conditioning  # noqa: E402
from training.train.loop import identity_init, npp_from_checkpoint, set_train_mode  # noqa: E402
from training.train.loss import LambdaTable, RDLoss  # noqa: E402

CONFIG_227 = "configs/training/lite_qa_signed_227_cpu.yaml"
#: (label, variant, weights: "identity" or a checkpoint path)
SETTINGS = (
    ("lite_qa_signed at the identity", "lite_qa_signed", "identity"),
    ("lite_qa_signed after 1,675 steps", "lite_qa_signed", "results/training/lite_qa_signed_227_cpu/checkpoint.pt"),
    ("local_qa at the identity", "local_qa", "identity"),
)


def noise_scale(grads: np.ndarray, batch: int) -> tuple[float, float]:
    """Unbiased |G|² and tr Σ (per image) from K gradients of batch ``batch`` (rows of ``grads``)."""
    k = grads.shape[0]
    small = float((grads**2).sum(1).mean())  # E|g_b|² = |G|² + tr Σ / b
    big = float((grads.mean(0) ** 2).sum())  # E|mean|² = |G|² + tr Σ / (K b)
    return (k * big - small) / (k - 1), batch * k * (small - big) / (k - 1)


def grad_sq_se(grads: np.ndarray, batch: int) -> float:
    """Jackknife standard error of the unbiased |G|² over the K batches."""
    k = grads.shape[0]
    loo = np.array([noise_scale(np.delete(grads, i, axis=0), batch)[0] for i in range(k)])
    return float(np.sqrt((k - 1) / k * ((loo - loo.mean()) ** 2).sum()))


def mean_pairwise_cosine(grads: np.ndarray) -> float:
    unit = grads / np.linalg.norm(grads, axis=1, keepdims=True).clip(1e-30)
    c = unit @ unit.T
    k = len(c)
    return float((c.sum() - np.trace(c)) / (k * (k - 1)))


class Setting:
    """One NPP at fixed weights, with the loop's loss and data."""

    def __init__(self, cfg: TrainConfig, variant: str, weights: str, pool: EncoderPool) -> None:
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        if weights == "identity":
            self.npp = identity_init(build_npp(variant))
        else:
            self.npp = npp_from_checkpoint(resolve_path(weights), variant)
        self.params = [p for p in self.npp.parameters() if p.requires_grad]
        self.theta = torch.cat([p.detach().flatten() for p in self.params]).clone()
        lambdas = LambdaTable.from_sweep(resolve_path(cfg.lambda_points), cfg.distortion)
        self.loss_fn = RDLoss(get_task(cfg.task), lambdas, beta=cfg.beta, distortion=cfg.distortion,
                              normalise=cfg.normalise_rate)
        proxy, codec = BpgProxy(quantiser=cfg.quantiser), BpgCodec(level=cfg.codec_level)
        self.real = StraightThroughCodec(proxy, codec, pool=pool, mode="real")
        self.proxy_only = StraightThroughCodec(proxy, codec, mode="proxy")
        self.data = TrainImages(cfg.data, cfg.seed, (cfg.qp_min, cfg.qp_max))

    def _loss(self, st: StraightThroughCodec, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        cond = bpg_conditioning(quality)
        set_train_mode(self.npp, self.cfg.batchnorm)
        x_bar = self.npp(x, cond)["x_bar"]
        return self.loss_fn(x, x_bar, st(x_bar, quality), quality, self.loss_fn.target(x))["total"]

    def gradient(self, step: int, proxy_forward: bool = False) -> np.ndarray:
        batch = self.data.batch(step, self.cfg.batch_size)
        self.npp.zero_grad(set_to_none=True)
        self._loss(self.proxy_only if proxy_forward else self.real, batch.x, batch.quality).backward()
        return torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel())
                          for p in self.params]).double().numpy()

    def set_weights(self, theta: torch.Tensor) -> None:
        with torch.no_grad():
            i = 0
            for p in self.params:
                p.copy_(theta[i : i + p.numel()].view_as(p))
                i += p.numel()

    @torch.no_grad()
    def loss_ratio(self, step: int) -> tuple[float, float]:
        """(real loss over the plain codec's on batch ``step`` minus 1, the plain codec's loss)."""
        batch = self.data.batch(step, self.cfg.batch_size)
        x, q = batch.x, batch.quality
        plain = float(self.loss_fn(x, x, self.real(x, q), q, self.loss_fn.target(x))["total"])
        return float(self._loss(self.real, x, q)) / plain - 1.0, plain


def check(setting: Setting, batches: int, fresh: int, steps: list[float], first: int) -> dict[str, object]:
    b = setting.cfg.batch_size
    grads, cos_rp = [], []
    for s in range(first, first + batches):
        g, gp = setting.gradient(s), setting.gradient(s, proxy_forward=True)
        grads.append(g)
        cos_rp.append(float(g @ gp / max(np.linalg.norm(g) * np.linalg.norm(gp), 1e-30)))
    g_all = np.stack(grads)
    grad_sq, trace = noise_scale(g_all, b)
    se = grad_sq_se(g_all, b) if len(g_all) > 2 else float("nan")
    mean = g_all.mean(0)
    direction = torch.from_numpy(mean / np.linalg.norm(mean)).float()
    norm = float(np.linalg.norm(mean))
    slope = grad_sq / norm  # G·(Ĝ/|Ĝ|): E[Ĝ·G] = |G|², estimated without the noise's bias
    fresh_steps = range(first + batches, first + batches + fresh)
    base_and_plain = np.array([setting.loss_ratio(s) for s in fresh_steps])
    base, plain = base_and_plain[:, 0], float(base_and_plain[:, 1].mean())
    descent = []
    for predicted in steps:
        # |Ĝ| ≥ the true slope (noise inflates it), so this step saves at most ``predicted`` to first order
        t = predicted * plain / norm
        setting.set_weights(setting.theta - t * direction)
        moved = np.array([setting.loss_ratio(s)[0] for s in fresh_steps])
        diff = moved - base
        descent.append({"t": t, "first_order": -t * slope / plain, "ratio": float(moved.mean()),
                        "change": float(diff.mean()),
                        "change_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0})
    setting.set_weights(setting.theta)
    return {"grad_sq": grad_sq, "grad_sq_se": se, "trace_sigma": trace,
            "noise_scale": trace / grad_sq if grad_sq > 0 else float("inf"),
            # |G|² under its estimate + 2 s.e. (≈ 97.5% one-sided) bounds B from below
            "noise_scale_low": trace / (max(grad_sq, 0.0) + 2 * se) if se == se else float("nan"),
            "cos_between": mean_pairwise_cosine(g_all), "cos_real_proxy": float(np.mean(cos_rp)),
            "slope": slope, "base_ratio": float(base.mean()), "descent": descent}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=CONFIG_227, help="training config giving the data, loss and batch size")
    ap.add_argument("--batches", type=int, default=24, help="K: batches whose gradients are taken (≥ 2)")
    ap.add_argument("--fresh", type=int, default=16, help="M: other batches the descent check scores (≥ 2)")
    ap.add_argument("--steps", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3],
                    help="steps along −Ĝ, each given as t·|Ĝ| over the plain codec's loss")
    ap.add_argument("--first-step", type=int, default=100_000, help="batches of these training steps (past any run)")
    ap.add_argument("--settings", type=int, nargs="+", default=list(range(len(SETTINGS))),
                    help="which settings, by index: " + "; ".join(f"{i}: {s[0]}" for i, s in enumerate(SETTINGS)))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "npp_gradient_check")
    args = ap.parse_args(argv)
    if args.batches < 2 or args.fresh < 2:
        ap.error("--batches and --fresh must be at least 2")
    if not set(args.settings) <= set(range(len(SETTINGS))):
        ap.error(f"--settings: indices 0..{len(SETTINGS) - 1}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(resolve_path(args.config))
    t0 = time.perf_counter()
    results: dict[str, dict[str, object]] = {}
    with EncoderPool(workers=cfg.encode_workers) as pool:
        for label, variant, weights in (SETTINGS[i] for i in args.settings):
            results[label] = check(Setting(cfg, variant, weights, pool), args.batches, args.fresh, args.steps,
                                   args.first_step)
            print(f"{label}: {results[label]}", flush=True)
    wall = time.perf_counter() - t0
    b = cfg.batch_size
    lines = [f"# Training gradient of the NPP: noise and descent, {args.batches} + {args.fresh} batches of {b} "
             "per setting", "",
             f"`python benchmarks/npp_gradient_check.py --batches {args.batches} --fresh {args.fresh} --steps "
             f"{' '.join(f'{t:g}' for t in args.steps)} --settings {' '.join(map(str, args.settings))}` — "
             f"{wall / 60:.1f} min wall; data, loss and λ of `{args.config}` (ImageNet train pictures squashed to "
             f"227, 224 crops, q {cfg.qp_min}..{cfg.qp_max}, real BPG forward, proxy backward, β = {cfg.beta:g}).", "",
             "| setting | \\|G\\|² ± s.e. | tr Σ per image | noise scale B (images) | B at least | "
             "cosine between batches | cosine, real vs proxy forward |", "|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        bns = float(r["noise_scale"])  # type: ignore[arg-type]
        b_text = f"{bns:,.0f}" if np.isfinite(bns) else "∞ (no signal detected)"
        lines.append(f"| {label} | {r['grad_sq']:.3g} ± {r['grad_sq_se']:.2g} | {r['trace_sigma']:.3g} | {b_text} | "
                     f"{r['noise_scale_low']:,.0f} | {r['cos_between']:+.3f} | {r['cos_real_proxy']:+.3f} |")
    lines += ["", f"Descent check: real loss ÷ plain codec's − 1 on {args.fresh} fresh batches, at the weights and "
              "after a step along −Ĝ: the measured change in percentage points ± s.e. (paired over the batches), and "
              "in brackets the first-order change t·\\|G\\|²/\\|Ĝ\\| (negative: a saving).", "",
              "| setting | at the weights | " + " | ".join(f"t·\\|Ĝ\\| = {100 * t:g}%" for t in args.steps) + " |",
              "|---|---|" + "---|" * len(args.steps)]
    for label, r in results.items():
        cells = []
        for d in r["descent"]:  # type: ignore[attr-defined]
            cells.append(f"{100 * d['change']:+.2f} ± {100 * d['change_se']:.2f} ({100 * d['first_order']:+.2f})")
        lines.append(f"| {label} | {100 * float(r['base_ratio']):+.2f}% | " + " | ".join(cells) + " |")  # type: ignore[arg-type]
    write_report(args.out, "\n".join(lines) + "\n",
                 {"batches": args.batches, "fresh": args.fresh, "batch_size": b, "wall_s": wall, "settings": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
