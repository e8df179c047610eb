"""Headroom probe: how much can the proxy's gradients buy at all, with no network in the way?

    python benchmarks/headroom_probe.py                        # 48 images, 20 Adam steps per q
    python benchmarks/headroom_probe.py --images 16 --steps 10 # a quick look
    python benchmarks/headroom_probe.py --codec-forward proxy  # ablation: the proxy in the forward pass too
    python benchmarks/headroom_probe.py --form detail_gain --lr 0.05 --window  # a smooth filter, read region only
    python benchmarks/headroom_probe.py --form detail_gain --lr 0.05 --window --resize 227 --mirror --mean-over-q \
        --npp gain_qa=results/training/distill_gain_qa_227/best.pt  # what a network learnt of them

The pixels of each image are optimised directly, separately for every BPG quality q, against
the training loss (``training.train.loss.RDLoss``: real-codec rate + λ(q)·KL + β·pixel MSE, λ
at the plain codec's slope, forward through the real codec and backward through the proxy,
exactly what the NPP trains with). The optimised images are then coded by the real codec at q
and scored; the BD-rate against the plain codec on the same images says how far the curve can
move when every pixel is free. It separates "the proxy's gradients are uninformative" (≈ 0 here)
from "the NPP is too small or undertrained" (large here, small for the NPP).

Two task models score the result: EfficientNet-Lite0, the one optimised against (its number is
partly adversarial), and MobileNetV2, never seen (its number is the transferable, semantic
part). ``--form`` restricts what may change (``training.train.pixel_forms``: every pixel, a
smooth perturbation, or a smooth map of how much fine detail to keep — a filter); ``--window``
leaves the frame the classifiers never read untouched, so that what remains is bought by content.
Images: centre 224×224 crops of ImageNet train images from the NPP's training range
(``--first``; the held-out range 0..199 is left alone), or with ``--resize`` the whole pictures
squashed as the distilled NPPs train on them and as the validation set is.

Which part of an optimum could a network learn? ``--mirror`` also optimises each picture's mirror
image and mirrors the result back: a filter of the content does the same to both views, while
what is tied to one view's codec decisions (block grid, intra modes, the optimiser's path) need
not. It scores the mirrored view's optimum and the mean of the two views' changes beside the
picture's own; ``--mean-over-q`` adds one change per picture for every q (the mean over q), what a
network without quality conditioning could at best produce; ``--strength 0.5`` scores each
optimum's change scaled by 0.5 (a regression that is unsure shrinks its output so);
``--npp VARIANT=CHECKPOINT`` scores trained NPPs on the same pictures, for the share of the
optima's gain they reach (with ``--steps 0`` the "optima" are the pictures themselves, so only
the NPPs move).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from shared.codecs.bpg.codec import BpgCodec  # noqa: E402
from shared.metrics.bdrate import bootstrap_bd_rate  # noqa: E402
from shared.pipeline import EncoderPool  # noqa: E402
from shared.tasks import get_task  # noqa: E402
from training.proxy.model import BpgProxy  # noqa: E402
from training.proxy.real_codec import StraightThroughCodec  # noqa: E402
from training.train.config import DataConfig, resolve_path  # noqa: E402
from training.train.data import TrainImages  # noqa: E402
from training.train.loop import _cpu_seconds, npp_from_checkpoint  # noqa: E402
from training.train.loss import LambdaTable, RDLoss  # noqa: E402
from training.train.pixel_forms import PICTURE_FORMS, make_form, optimise_pixels, window_mask  # noqa: E402
from training.train.validate import CodedScores, Prefilter, npp_prefilter, score  # noqa: E402

QUALITIES = (26, 30, 34, 38, 42)
ROLES = {"efficientnet_lite0": "optimised against", "mobilenet_v2": "never seen"}


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """The median over pictures of the correlation between two changes to each picture."""
    a, b = a.flatten(1), b.flatten(1)
    c = (a * b).sum(1) / ((a * a).sum(1) * (b * b).sum(1)).sqrt().clamp_min(1e-12)
    return float(c.median())


def _optimum(by_q: dict[int, torch.Tensor]) -> Prefilter:
    """The pictures already optimised for each q (the probe's pictures, in order)."""
    return lambda _x, q: by_q[q]


def _mean_change(x: torch.Tensor, *optima: torch.Tensor) -> torch.Tensor:
    return (x + torch.stack([y - x for y in optima]).mean(0)).clamp(0.0, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--first", type=int, default=200, help="first ImageNet train image (sorted by name)")
    ap.add_argument("--steps", type=int, default=20, help="Adam steps per image and quality")
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam step on [0,1] pixels (1/255 ≈ 0.004)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--qualities", type=int, nargs="+", default=list(QUALITIES))
    ap.add_argument("--level", type=int, default=8, help="BPG encoder level")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--codec-forward", choices=["real", "proxy"], default="real",
                    help="real: forward through BPG, backward through the proxy (the method); proxy: both through "
                         "the proxy (the ablation). Scoring always uses the real codec.")
    ap.add_argument("--form", choices=PICTURE_FORMS.names(), default="pixels", help="what may change")
    ap.add_argument("--scale", type=int, default=8, help="lowres / detail_gain: the map is this many times coarser")
    ap.add_argument("--sigma", type=float, default=1.5, help="detail_gain: Gaussian σ (pixels) below which is kept")
    ap.add_argument("--window", action="store_true", help="change only what the classifiers read (plus 2 px)")
    ap.add_argument("--resize", type=int, default=None,
                    help="whole pictures squashed to this size (the distillation targets' and val's scale)")
    ap.add_argument("--lambda-points", type=Path, default=Path("configs/training/bpg_efficientnet_lite0_points.json"),
                    help="the plain codec's sweep λ(q) is read from (the _227 one with --resize 227)")
    ap.add_argument("--mirror", action="store_true",
                    help="also optimise each mirror image; score its optimum and the mean of both views")
    ap.add_argument("--mean-over-q", action="store_true", help="also score one change per picture for every q")
    ap.add_argument("--strength", type=float, action="append", default=[], metavar="S",
                    help="also score each optimum's change scaled by S; repeatable")
    ap.add_argument("--npp", action="append", default=[], metavar="VARIANT=CHECKPOINT",
                    help="also score this NPP (a run's checkpoint.pt or best.pt); repeatable")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default benchmarks/results/headroom_probe (headroom_probe_proxy_forward with the proxy)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    form = make_form(args.form, args.scale, args.sigma)
    npps = [spec.split("=", 1) for spec in args.npp]
    if any(len(spec) != 2 for spec in npps):
        ap.error("--npp takes VARIANT=CHECKPOINT")
    if args.out is None:
        stem = "headroom_probe" if args.codec_forward == "real" else "headroom_probe_proxy_forward"
        stem += "" if args.form == "pixels" else f"_{args.form}"
        stem += "_window" if args.window else ""
        stem += f"_resize{args.resize}" if args.resize else ""
        stem += "_mirror" if args.mirror else ""
        args.out = ROOT / "benchmarks" / "results" / stem

    cfg = DataConfig(first=args.first, count=1, holdout_first=args.first + 1, holdout_count=args.images,
                     crop=args.resize or 224, resize=args.resize)
    data = TrainImages(cfg, 0, (args.qualities[0], args.qualities[-1]))
    held = data.holdout()  # centre crops of images first+1 .. first+images
    x, ids = held.x, held.ids
    codec = BpgCodec(level=args.level)
    lite0, mnv2 = get_task("efficientnet_lite0"), get_task("mobilenet_v2")
    region = None
    if args.window:
        w_lo, w_hi = lite0.preprocess.read_window(x.shape[-1])  # type: ignore[attr-defined]
        if mnv2.preprocess.read_window(x.shape[-1]) != (w_lo, w_hi):  # type: ignore[attr-defined]
            raise SystemExit("error: the two classifiers read different windows")
        region = window_mask((x.shape[-2], x.shape[-1]), w_lo, w_hi)
    lambdas = LambdaTable.from_sweep(resolve_path(str(args.lambda_points)), "kl")
    loss_fn = RDLoss(lite0, lambdas, beta=0.5, distortion="kl", normalise=True)
    torch.manual_seed(0)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    with EncoderPool(workers=args.workers) as pool:
        st = StraightThroughCodec(BpgProxy(), codec, pool=pool, mode=args.codec_forward)
        views = {"own": x, "mirrored": x.flip(-1)} if args.mirror else {"own": x}
        optima: dict[str, dict[int, torch.Tensor]] = {}
        for view, pictures in views.items():
            mask = region.flip(-1) if region is not None and view == "mirrored" else region
            optima[view] = {}
            for q in args.qualities:
                y = torch.cat([optimise_pixels(pictures[lo : lo + args.batch], q, st, loss_fn, args.steps, args.lr,
                                               form, mask) for lo in range(0, len(x), args.batch)])
                optima[view][q] = y.flip(-1) if view == "mirrored" else y
                print(f"{view} q{q}: optimised {len(ids)} images in {time.perf_counter() - t0:.0f} s", flush=True)
        optimised = optima["own"]
        changes = {"probe": optimised}
        if args.mirror:
            changes["mirrored view"] = optima["mirrored"]
            changes["mean of the two views"] = {q: _mean_change(x, optimised[q], optima["mirrored"][q])
                                                for q in args.qualities}
        if args.mean_over_q:
            base = changes["mean of the two views" if args.mirror else "probe"]
            one = _mean_change(x, *base.values())
            changes["mean over q" + (" of the two views" if args.mirror else "")] = {q: one for q in args.qualities}
        for strength in args.strength:
            changes[f"probe at {strength:g}× its change"] = {q: (x + strength * (y - x)).clamp(0.0, 1.0)
                                                            for q, y in optimised.items()}
        filters = {name: _optimum(by_q) for name, by_q in changes.items()}
        for variant, checkpoint in npps:
            filters[f"NPP {variant} ({checkpoint})"] = npp_prefilter(npp_from_checkpoint(resolve_path(checkpoint),
                                                                                         variant))
        tasks = {"efficientnet_lite0": lite0, "mobilenet_v2": mnv2}
        plain = score(x, ids, args.qualities, codec, tasks, pool=pool, chunk=len(ids))
        # with no steps the probe's pictures are the originals: the plain codec's scores already
        scored: dict[str, CodedScores] = {"probe": plain} if args.steps == 0 else {}
        for name, prefilter in filters.items():
            if name in scored:
                continue
            with torch.no_grad():
                scored[name] = score(x, ids, args.qualities, codec, tasks, prefilter=prefilter, pool=pool,
                                     chunk=len(ids))
        probe = scored["probe"]
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0  # while the pool's workers still count

    what = (f"whole pictures squashed to {args.resize}×{args.resize}" if args.resize else "centre 224×224 crops")
    lines = [f"# Headroom probe: {len(ids)} ImageNet train images ({what} of #{args.first + 1}.."
             f"{args.first + len(ids)}), {args.steps} Adam steps (lr {args.lr}) per image and q, BPG level "
             f"{args.level}, codec forward: {args.codec_forward}, form: {form}"
             + (f", changes only inside rows and columns {w_lo}..{w_hi - 1}" if args.window else ""), "",
             f"`python benchmarks/headroom_probe.py --images {args.images} --first {args.first} --steps {args.steps} "
             f"--lr {args.lr} "
             f"--codec-forward {args.codec_forward} --form {args.form}"
             + (f" --scale {args.scale}" if args.form != "pixels" else "")
             + (f" --sigma {args.sigma}" if args.form == "detail_gain" else "")
             + (" --window" if args.window else "")
             + (f" --resize {args.resize} --lambda-points {args.lambda_points}" if args.resize else "")
             + (" --mirror" if args.mirror else "") + (" --mean-over-q" if args.mean_over_q else "")
             + "".join(f" --strength {v:g}" for v in args.strength)
             + "".join(f" --npp {spec}" for spec in args.npp) + "` — "
             f"{wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min ({platform.node()}, {torch.get_num_threads()} "
             f"torch threads, shared with other work)", "",
             "| q | bpp plain | bpp probe | KL Lite0 plain | KL Lite0 probe | KL MNv2 plain | KL MNv2 probe | "
             "pixel PSNR probe vs original (dB) |", "|---|---|---|---|---|---|---|---|"]
    for p, q in enumerate(args.qualities):
        mse = float(((optimised[q] - x) ** 2).flatten(1).mean(1).clamp_min(1e-12).log10().mean())
        kls = " | ".join(f"{s.kl[name][p].mean():.4f}" for name in ("efficientnet_lite0", "mobilenet_v2")
                         for s in (plain, probe))
        lines.append(f"| {q} | {plain.bpp()[p]:.4f} | {probe.bpp()[p]:.4f} | {kls} | {-10 * mse:.2f} |")
    lines += ["", "| task | BD-rate at equal KL (90% paired bootstrap) | BD-rate at equal top-1 agreement |",
              "|---|---|---|"]
    summary: dict[str, object] = {"images": list(ids), "qualities": args.qualities, "steps": args.steps,
                                  "lr": args.lr, "codec_forward": args.codec_forward,
                                  "form": repr(form), "window": bool(args.window), "wall_s": wall, "cpu_s": cpu}
    for name in tasks:
        kl = bootstrap_bd_rate(plain.curve(name), probe.curve(name), higher_is_better=False, n=args.bootstrap)
        ag = bootstrap_bd_rate(plain.curve(name, "agreement"), probe.curve(name, "agreement"), n=args.bootstrap)
        role = "optimised against" if name == "efficientnet_lite0" else "never seen"
        lines.append(f"| {name} ({role}) | {kl.describe()} | {ag.describe()} |")
        summary[name] = {"bd_kl": kl.to_json(), "bd_agreement": ag.to_json()}
    summary["bpp_plain"], summary["bpp_probe"] = plain.bpp().tolist(), probe.bpp().tolist()
    if len(scored) > 1:
        lines += ["", "Each variant coded by the real codec and scored against the plain codec on the same pictures "
                  "(BD-rate at equal KL, 90% paired bootstrap; bpp as a share of the plain codec's at each q):", "",
                  "| variant | bpp / plain at q " + ", ".join(map(str, args.qualities)) + " | "
                  + " | ".join(f"{name} ({ROLES[name]})" for name in tasks) + " |",
                  "|---|---|" + "---|" * len(tasks)]
        summary["variants"] = {}
        for variant, scores in scored.items():
            ratios = ", ".join(f"{r:.3f}" for r in scores.bpp() / plain.bpp())
            bds = {name: bootstrap_bd_rate(plain.curve(name), scores.curve(name), higher_is_better=False,
                                           n=args.bootstrap) for name in tasks}
            lines.append(f"| {variant} | {ratios} | " + " | ".join(bd.describe() for bd in bds.values()) + " |")
            summary["variants"][variant] = {"bpp": scores.bpp().tolist(),  # type: ignore[index]
                                            **{name: bd.to_json() for name, bd in bds.items()}}
    if args.mirror:
        own, other = optima["own"], optima["mirrored"]
        lines += ["", "How alike the two views' optima are (median over pictures of the correlation between the "
                  "changes they make):", "", "| q | own vs mirrored view | own at this q vs own at the next q |",
                  "|---|---|---|"]
        for p, q in enumerate(args.qualities):
            nxt = (f"{_correlation(own[q] - x, own[args.qualities[p + 1]] - x):.3f}"
                   if p + 1 < len(args.qualities) else "")
            lines.append(f"| {q} | {_correlation(own[q] - x, other[q] - x):.3f} | {nxt} |")
    write_report(args.out, "\n".join(lines) + "\n", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
