"""``python -m training.train --config configs/training/<name>.yaml [--steps N] [--out DIR]``.

Several processes (GPUs, or CPU processes with gloo): ``torchrun --nproc_per_node N -m training.train
--config ...`` — the global batch is split between them (:mod:`training.train.distributed`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.train.config import ConfigError, load_config
from training.train.distributed import DistributedError, setup
from training.train.loop import CheckpointError, train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train", description="Train an NPP (real codec forward, "
                                 "proxy backward); resumes from <out>/checkpoint.pt")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--steps", type=int, help="train up to this many steps in total (overrides the config)")
    ap.add_argument("--out", help="run folder (overrides the config)")
    ap.add_argument("--threads", type=int, help="torch threads (overrides the config; does not change the run)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"],
                    help="where the networks run (overrides the config; does not change the run)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, {"steps": args.steps, "out": args.out, "torch_threads": args.threads,
                                        "device": args.device})
        dist = setup(cfg.device, cfg.batch_size)
    except (ConfigError, DistributedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        state = train(cfg, resume=not args.fresh, progress=not args.no_progress, dist=dist)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        dist.close()
    if dist.is_main:
        print(f"{cfg.name}: step {state.step} on {dist.world} process(es) ({dist.device}), "
              f"{state.wall_s:.0f} s wall, {state.cpu_s:.0f} CPU-s → {cfg.out_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
