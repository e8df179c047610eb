"""Score finished runs on the held-out training pictures, side by side, after the fact.

``python -m training.train.heldout CONFIG[=CHECKPOINT] [CONFIG[=CHECKPOINT] ...]`` codes the
held-out pictures of the configs (they must agree on the pictures, qualities, codec and tasks) with
the plain codec once, then with each run's network in front, and prints one row per run: the
BD-rate at equal KL for the trained-against task and every ``validate_tasks`` backbone, with its
paired bootstrap interval, and the bits against the plain codec's. This is the selection a run's
own validation passes make, for runs that skipped them (ablations) or ended before one; the
checkpoint defaults to the run's ``checkpoint.pt``. ImageNet val is never touched here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from shared.pipeline import EncoderPool
from training.train.config import ConfigError, TrainConfig, load_config
from training.train.data import DataError, TrainImages
from training.train.loop import CHECKPOINT, CheckpointError, npp_from_checkpoint
from training.train.validate import ValidationResult, held_out_validator, npp_prefilter


def _held_out_setting(cfg: TrainConfig) -> tuple[object, ...]:
    """What must be equal for two runs to share one plain-codec pass."""
    return (cfg.data.model_dump(), cfg.seed, tuple(cfg.validate_qualities), cfg.codec_level, cfg.task,
            tuple(cfg.validate_tasks), cfg.validate_bootstrap)


def parse_run(arg: str) -> tuple[TrainConfig, Path]:
    """``CONFIG[=CHECKPOINT]`` → the config and the checkpoint to score."""
    config, _, checkpoint = arg.partition("=")
    cfg = load_config(Path(config))
    return cfg, Path(checkpoint) if checkpoint else cfg.out_dir() / CHECKPOINT


def score_runs(runs: list[tuple[TrainConfig, Path]], workers: int = 2) -> list[ValidationResult]:
    """Each run's network against the plain codec on the runs' common held-out pictures."""
    if not runs:
        raise ConfigError("no runs to score")
    first = runs[0][0]
    for cfg, _ in runs[1:]:
        if _held_out_setting(cfg) != _held_out_setting(first):
            raise ConfigError(f"{cfg.name} holds out other pictures, qualities or tasks than {first.name}")
    holdout = TrainImages(first.data, first.seed, (first.qp_min, first.qp_max)).holdout()
    nets = [npp_from_checkpoint(path, cfg.npp) for cfg, path in runs]  # every checkpoint read before coding
    with EncoderPool(workers=workers) as pool:
        validator = held_out_validator(first, holdout.x, holdout.ids, pool)
        return [validator.run(npp_prefilter(npp)) for npp in nets]


def table(runs: list[tuple[TrainConfig, Path]], results: list[ValidationResult]) -> str:
    """A markdown table, one row per run."""
    tasks = list(results[0].bd_kl)
    qualities = results[0].npp.qualities
    head = ["run", "checkpoint", *(f"BD-rate at equal KL, {t} [90%]" for t in tasks),
            f"bits vs plain at q {' / '.join(str(q) for q in qualities)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (cfg, path), r in zip(runs, results, strict=True):
        bd = [f"{b.estimate.value:+.1f}% [{b.low:+.1f}, {b.high:+.1f}]" for b in r.bd_kl.values()]
        bits = " / ".join(f"{100 * (n / p - 1):+.0f}%" for n, p in zip(r.npp.bpp(), r.plain.bpp(), strict=True))
        lines.append("| " + " | ".join([cfg.name, str(path), *bd, bits]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train.heldout",
                                 description="Score runs' networks on their held-out training pictures")
    ap.add_argument("runs", nargs="+", metavar="CONFIG[=CHECKPOINT]",
                    help="a run's config, and the checkpoint to score (default: the run's checkpoint.pt)")
    ap.add_argument("--workers", type=int, default=2, help="real-codec worker processes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        runs = [parse_run(a) for a in args.runs]
        results = score_runs(runs, workers=args.workers)
    except (ConfigError, DataError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(runs, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
