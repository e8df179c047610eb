"""Can an NPP lower the training loss at all? Fit one fixed batch and watch the loss fall.

    python benchmarks/npp_overfit_batch.py                                   # the default grid
    python benchmarks/npp_overfit_batch.py --variants lite_qa_signed --lrs 1e-3 --steps 40

The classic sanity check before long runs: four ImageNet train crops (224×224 centres, outside
the held-out range), one BPG q, the training loss exactly as the loop computes it (real codec
forward, proxy backward, λ at the codec's slope, β·pixel MSE), identity start, Adam. Every
``--every`` steps the NPP is also run in eval mode (batch-norm running statistics, what export
and the edge use) and the loss of that output is reported against the plain codec's on the same
batch. A configuration that cannot fit four images cannot learn from eight hundred; one that
fits them in train mode but not in eval mode suffers from batch-norm statistics.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.codecs.bpg.codec import BpgCodec  # noqa: E402
from shared.conditioning import conditioning_value  # noqa: E402
from shared.pipeline import EncoderPool  # noqa: E402
from shared.tasks import get_task  # noqa: E402
from training.npp import build_npp  # noqa: E402
from training.proxy.model import BpgProxy  # noqa: E402
from training.proxy.real_codec import StraightThroughCodec  # noqa: E402
from training.train.config import DataConfig, resolve_path  # noqa: E402
from training.train.data import TrainImages  # noqa: E402
from training.train.loop import identity_init  # noqa: E402
from training.train.loss import LambdaTable, RDLoss  # noqa: E402


def fit(variant: str, lr: float, bn: str, x: torch.Tensor, q: int, st: StraightThroughCodec, loss_fn: RDLoss,
        steps: int, every: int) -> list[tuple[int, float, float, float, float]]:
    """(step, train-mode loss, eval-mode loss, eval bpp, eval distortion) every ``every`` steps."""
    torch.manual_seed(0)
    npp = identity_init(build_npp(variant))
    opt = torch.optim.Adam(npp.parameters(), lr=lr)
    quality = torch.full((x.shape[0],), q)
    cond = torch.full((x.shape[0], 1), conditioning_value("bpg", q))
    target = loss_fn.target(x)
    rows = []
    for step in range(1, steps + 1):
        npp.train(bn == "batch")
        x_bar = npp(x, cond)["x_bar"]
        terms = loss_fn(x, x_bar, st(x_bar, quality), quality, target)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        if step % every == 0 or step == steps:
            npp.eval()
            with torch.no_grad():
                x_eval = npp(x, cond)["x_bar"]
                ev = loss_fn(x, x_eval, st(x_eval, quality), quality, target)
            rows.append((step, float(terms["total"].detach()), float(ev["total"]), float(ev["rate_bpp"]),
                         float(ev["distortion"])))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["lite_qa", "lite_qa_signed"])
    ap.add_argument("--lrs", type=float, nargs="+", default=[2e-4, 1e-3])
    ap.add_argument("--bn", nargs="+", choices=["batch", "frozen"], default=["batch"],
                    help="batch: batch-norm on batch statistics while fitting (the loop's way); frozen: "
                         "running statistics throughout (batch-norm is then a learnt affine map)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--q", type=int, default=34)
    ap.add_argument("--first", type=int, default=300, help="first ImageNet train image of the batch")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = TrainImages(DataConfig(first=args.first, count=1, holdout_first=args.first + 1,
                                  holdout_count=args.images, crop=224), 0, (args.q, args.q))
    x = data.holdout().x
    lambdas = LambdaTable.from_sweep(resolve_path("configs/training/bpg_efficientnet_lite0_points.json"), "kl")
    loss_fn = RDLoss(get_task("efficientnet_lite0"), lambdas, beta=50.0, distortion="kl", normalise=True)
    t0 = time.perf_counter()
    print(f"# One batch: {args.images} ImageNet train crops from #{args.first + 1}, BPG q{args.q}, {args.steps} "
          f"Adam steps, identity start, β = 50\n")
    print("| variant | lr | batch-norm | step | loss, train mode | loss, eval mode | eval vs plain | "
          "bpp eval (plain) | KL eval (plain) |")
    print("|---|---|---|---|---|---|---|---|---|")
    with EncoderPool(workers=1) as pool:
        st = StraightThroughCodec(BpgProxy(), BpgCodec(level=8), pool=pool, mode="real")
        quality = torch.full((x.shape[0],), args.q)
        with torch.no_grad():
            plain = loss_fn(x, x, st(x, quality), quality, loss_fn.target(x))
        p_loss, p_bpp, p_d = float(plain["total"]), float(plain["rate_bpp"]), float(plain["distortion"])
        for variant, lr, bn in itertools.product(args.variants, args.lrs, args.bn):
            for step, train_loss, eval_loss, bpp, dist in fit(variant, lr, bn, x, args.q, st, loss_fn, args.steps,
                                                               args.every):
                print(f"| {variant} | {lr:g} | {bn} | {step} | {train_loss:.4f} | {eval_loss:.4f} | "
                      f"{100 * (eval_loss / p_loss - 1):+.1f}% | {bpp:.3f} ({p_bpp:.3f}) | {dist:.4f} ({p_d:.4f}) |",
                      flush=True)
    print(f"\nplain codec loss on the batch: {p_loss:.4f}; {time.perf_counter() - t0:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
