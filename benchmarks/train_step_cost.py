"""Cost of one NPP training step on this machine's CPU, per NPP variant, crop size and batch.

    python benchmarks/train_step_cost.py                       # nano_qa/lite_qa/paper_qa × 128/224, batch 4
    python benchmarks/train_step_cost.py --variants nano_qa --crops 224 --batches 4 8 --steps 3

One step is what ``training.train.loop`` runs: NPP forward, the straight-through codec (real BPG,
level 8, in an EncoderPool of ``--workers`` processes, overlapping the proxy), the BPG proxy
(ste quantiser), EfficientNet-Lite0 on the decoded batch plus its prediction on the pristine
batch (KL target), the rate–distortion loss, backward and an Adam step. Per configuration: one
warm-up step, then ``--steps`` timed steps (median wall seconds, and CPU seconds of this process
and the pool workers per step), and one extra step timed stage by stage without overlap
(where the time goes). Images: 224-pixel-or-larger ImageNet train pictures, random crops and
q in 25..44, as in training. Untrained NPP weights (the cost does not depend on them).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.codecs.bpg.codec import BpgCodec  # noqa: E402
from shared.pipeline import EncoderPool, round_trip_batch  # noqa: E402
from shared.tasks import get_task  # noqa: E402
from training.npp import build_npp, count_parameters  # noqa: E402
from training.proxy.model import BpgProxy  # noqa: E402
from training.proxy.real_codec import StraightThroughCodec, to_frames  # noqa: E402
from training.train.config import DataConfig, TrainConfig, resolve_path  # noqa: E402
from training.train.data import TrainImages, bpg_conditioning  # noqa: E402
from training.train.loop import _cpu_seconds  # noqa: E402
from training.train.loss import LambdaTable, RDLoss  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="*", default=["nano_qa", "lite_qa", "paper_qa"])
    ap.add_argument("--crops", type=int, nargs="*", default=[128, 224])
    ap.add_argument("--batches", type=int, nargs="*", default=[4])
    ap.add_argument("--steps", type=int, default=2, help="timed steps per configuration (after 1 warm-up)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    defaults = TrainConfig()
    task = get_task("efficientnet_lite0")
    proxy = BpgProxy()
    lambdas = LambdaTable.from_sweep(resolve_path(defaults.lambda_points), "kl")
    loss_fn = RDLoss(task, lambdas)
    codec = BpgCodec(level=8)
    rows = []
    with EncoderPool(workers=args.workers) as pool:
        st = StraightThroughCodec(proxy, codec, pool=pool)
        for crop in args.crops:
            data = TrainImages(DataConfig(crop=crop), 0, (25, 44))
            for variant in args.variants:
                for bs in args.batches:
                    torch.manual_seed(0)
                    npp = build_npp(variant)
                    opt = torch.optim.Adam(npp.parameters(), lr=1e-4)

                    def step(i: int, npp: torch.nn.Module = npp, opt: torch.optim.Optimizer = opt,
                             bs: int = bs, data: TrainImages = data) -> None:
                        b = data.batch(i, bs)
                        cond = bpg_conditioning(b.quality)
                        x_bar = npp(b.x, cond)["x_bar"]
                        coded = st(x_bar, b.quality)
                        terms = loss_fn(b.x, x_bar, coded, b.quality, loss_fn.target(b.x))
                        opt.zero_grad()
                        terms["total"].backward()
                        opt.step()

                    step(0)
                    walls, cpus = [], []
                    for i in range(1, args.steps + 1):
                        w0, c0 = time.perf_counter(), _cpu_seconds()
                        step(i)
                        walls.append(time.perf_counter() - w0)
                        cpus.append(_cpu_seconds() - c0)
                    # one step stage by stage, no overlap
                    stages: dict[str, float] = {}
                    b = data.batch(99, bs)
                    t = time.perf_counter()
                    cond = bpg_conditioning(b.quality)
                    x_bar = npp(b.x, cond)["x_bar"]
                    stages["npp_fwd"] = time.perf_counter() - t
                    t = time.perf_counter()
                    round_trip_batch(to_frames(x_bar), codec, [int(q) for q in b.quality], pool=pool)
                    stages["codec"] = time.perf_counter() - t
                    t = time.perf_counter()
                    p = proxy(x_bar, b.quality.float())
                    stages["proxy_fwd"] = time.perf_counter() - t
                    t = time.perf_counter()
                    target = loss_fn.target(b.x)
                    terms = loss_fn(b.x, x_bar, {"x_hat": p["x_hat"], "bpp": p["bpp"]}, b.quality, target)
                    stages["task_fwd"] = time.perf_counter() - t
                    t = time.perf_counter()
                    opt.zero_grad()
                    terms["total"].backward()
                    stages["backward"] = time.perf_counter() - t
                    t = time.perf_counter()
                    opt.step()
                    stages["adam"] = time.perf_counter() - t
                    row = {"variant": variant, "params": count_parameters(npp), "crop": crop, "batch": bs,
                           "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), **stages}
                    rows.append(row)
                    print(row, file=sys.stderr, flush=True)
    print(f"one training step, CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"torch threads, {args.workers} encoder workers; median of {args.steps} steps after 1 warm-up)\n")
    print("| variant | params | crop | batch | wall s/step | CPU s/step | images/s | stage s: NPP fwd | codec | "
          "proxy fwd | task fwd | backward | Adam |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['params']:,} | {r['crop']} | {r['batch']} | {r['wall_s']:.2f} | "
              f"{r['cpu_s']:.2f} | "
              f"{r['batch'] / r['wall_s']:.2f} | {r['npp_fwd']:.2f} | {r['codec']:.2f} | {r['proxy_fwd']:.2f} | "
              f"{r['task_fwd']:.2f} | {r['backward']:.2f} | {r['adam']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
