"""The `prepicm` command: the codec commands of :mod:`shared.cli` (codecs, encode, decode, info)
and the evaluation's eval, bdrate, plot and bench. User errors are one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.registry import EVAL_METRICS
from shared.cli import USER_ERRORS, CliError, add_codec_commands, run_command


def _cli_error(msg: str) -> CliError:
    return CliError(msg)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Library errors that mean "bad input" and are reported as one line."""
    from evaluation.config import SweepError
    from evaluation.keys import TaskIdentityError
    from evaluation.results import ResultsError
    from shared.datasets import DatasetError
    from shared.metrics.bdrate import BDRateError
    from shared.preprocess import PreprocessorError
    from shared.runtime import RuntimeSettingsError

    return (*USER_ERRORS, DatasetError, BDRateError, PreprocessorError, ResultsError, SweepError,
            TaskIdentityError, RuntimeSettingsError)


def _parse_qualities(specs: list[str], codecs: list[str]) -> dict[str, list[int]]:
    from shared.codecs.ladders import TASK as DEFAULT_QUALITIES

    out = {c: list(DEFAULT_QUALITIES.get(c, [])) for c in codecs}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep:
            raise _cli_error(f"--qualities {spec!r} must look like bpg=22,27,32")
        if name not in out:
            raise _cli_error(f"--qualities names codec {name!r}, which is not in --codecs ({', '.join(codecs)})")
        try:
            out[name] = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise _cli_error(f"--qualities {spec!r}: qualities must be integers") from None
    for c, qs in out.items():
        if not qs:
            raise _cli_error(f"no qualities for codec {c!r}; pass --qualities {c}=Q1,Q2,...")
    return out


def _parse_codec_options(specs: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, sep, kv = spec.partition(":")
        key, sep2, value = kv.partition("=")
        if not sep or not sep2:
            raise _cli_error(f"--codec-option {spec!r} must look like bpg:level=8")
        out.setdefault(name, {})[key.replace("-", "_")] = int(value) if value.lstrip("-").isdigit() else value
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.report import write_sweep_report
    from evaluation.sweep import CodecSpec, SweepConfig, load_config, run_sweep

    try:
        if args.config:
            cfg = load_config(args.config)
            for attr, key in (("out", "out"), ("limit", "limit"), ("cache_dir", "cache_dir"),
                              ("workers", "workers")):
                if getattr(args, attr) is not None:
                    setattr(cfg, key, getattr(args, attr))
        else:
            missing = [f"--{n.replace('_', '-')}" for n in ("dataset_kind", "dataset", "task", "codecs", "out")
                       if not getattr(args, n)]
            if missing:
                raise _cli_error(f"missing {', '.join(missing)} (or pass --config FILE.yaml)")
            quals = _parse_qualities(args.qualities or [], args.codecs)
            opts = _parse_codec_options(args.codec_option or [])
            cfg = SweepConfig(
                dataset_kind=args.dataset_kind, dataset=args.dataset, task=args.task,
                codecs=[CodecSpec(c, quals[c], opts.get(c, {})) for c in args.codecs],
                out=args.out, limit=args.limit, preprocess=args.preprocess or ["none"],
                cache_dir=args.cache_dir, workers=args.workers,
            )
        if args.no_cache:
            cfg.cache_dir = ""
        if args.batch_size:
            cfg.batch_size = args.batch_size
        cfg.progress = not args.no_progress
        result = run_sweep(cfg)
        files = write_sweep_report([result.out], Path(result.out) / "report")
    except _user_errors() as exc:
        raise _cli_error(str(exc)) from exc
    s = result.stats
    print(f"{s.points_computed} point(s) computed, {s.points_resumed} resumed, {s.images_encoded} encodes, "
          f"{s.cache_hits} cache hits, {s.seconds:.1f} s")
    print("wrote " + ", ".join(str(p) for p in [Path(result.out) / "sweep.json", *files.values()]))
    return 0


def cmd_bdrate(args: argparse.Namespace) -> int:
    from evaluation.report import compare, compare_markdown, default_bd_metrics

    try:
        metrics = args.metrics or default_bd_metrics(args.results)
        result = compare(args.results, args.anchor, args.test, metrics, n_boot=args.bootstrap, seed=args.seed,
                         ci=args.ci, method=args.method)
    except _user_errors() as exc:
        raise _cli_error(str(exc)) from exc
    md = compare_markdown(result)
    print(md)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(result, indent=1))
        out.with_suffix(".md").write_text(md)
        print(f"wrote {out.with_suffix('.json')}, {out.with_suffix('.md')}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from evaluation.report import write_sweep_report

    try:
        files = write_sweep_report(args.results, args.out)
    except _user_errors() as exc:
        raise _cli_error(str(exc)) from exc
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


def add_eval_commands(subparsers: Any) -> None:
    """Register ``eval``, ``bdrate``, ``plot`` and ``bench`` on a subparsers object."""
    from shared.codecs import CODECS
    from shared.datasets import DATASETS
    from shared.metrics.bdrate import METHODS

    try:
        from shared.tasks import TASKS

        task_choices: list[str] | None = list(TASKS.names())
    except ImportError:  # the tasks extra (torch) is not installed: eval will say so when run
        task_choices = None

    p = subparsers.add_parser("eval", help="rate–accuracy sweep: dataset × task × codec × quality")
    p.add_argument("--config", help="YAML sweep config (keys of SweepConfig); flags below override out/limit")
    p.add_argument("--dataset-kind", choices=DATASETS.names())
    p.add_argument("--dataset", help="dataset root folder")
    p.add_argument("--task", choices=task_choices)
    p.add_argument("--codecs", nargs="+", choices=CODECS.names())
    p.add_argument("--qualities", nargs="+", metavar="CODEC=Q1,Q2,...", help="per codec (defaults per codec)")
    p.add_argument("--codec-option", nargs="+", metavar="CODEC:KEY=VALUE", help="e.g. bpg:level=8")
    p.add_argument("--preprocess", nargs="+", metavar="SPEC",
                   help="none | shipped (the committed NPP) | registered name | module:function | artifact dir "
                        "(default none)")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--out", help="output folder (points/, sweep.json, report/)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default: $PREPICM_CACHE_DIR/eval, else ~/.cache/prepicm/eval)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--workers", type=int, default=None,
                   help="encoder processes (default $PREPICM_ENCODE_WORKERS, else 2)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("bdrate", help="BD-rate of curves against an anchor, with paired bootstrap")
    p.add_argument("results", nargs="+", help="sweep output folders (same images and model)")
    p.add_argument("--anchor", required=True, help="anchor curve label, e.g. bpg")
    p.add_argument("--test", nargs="+", help="test curve labels (default: every other curve)")
    p.add_argument("--metrics", nargs="+", choices=EVAL_METRICS.names())
    p.add_argument("--method", choices=METHODS, default="pchip")
    p.add_argument("--bootstrap", type=int, default=1000, help="replicates (0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ci", type=float, default=0.90)
    p.add_argument("--out", help="write OUT.json and OUT.md")
    p.set_defaults(func=cmd_bdrate)

    p = subparsers.add_parser("plot", help="rate–accuracy tables and plots from sweep results")
    p.add_argument("results", nargs="+", help="sweep output folders")
    p.add_argument("--out", required=True, help="folder for results.md/json and PNGs")
    p.set_defaults(func=cmd_plot)

    p = subparsers.add_parser("bench", help="rate–distortion and speed of every codec over a folder of images")
    p.add_argument("--images", help="folder of images (default: ../shared/data/kodak, else packaged samples)")
    p.add_argument("--codecs", nargs="+", choices=CODECS.names())
    p.add_argument("--qualities", nargs="+", metavar="CODEC=Q1,Q2,...")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--quick", action="store_true", help="fewer qualities per codec")
    p.add_argument("--bpg-level", type=int, default=8, choices=range(10), metavar="0-9")
    p.add_argument("--out", default="results/codec_bench")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from evaluation import bench
    from shared.codecs import CODECS

    names = args.codecs or [n for n in CODECS.names() if CODECS.get(n).unavailable_reason() is None]
    qualities = bench.qualities_for(names, args.quick)
    for spec in args.qualities or []:
        name, _, values = spec.partition("=")
        if name not in qualities:
            raise CliError(f"--qualities names codec {name!r}, which is not benchmarked")
        try:
            qualities[name] = [int(v) for v in values.split(",") if v]
        except ValueError as exc:
            raise CliError(f"--qualities {spec!r} must look like bpg=22,27,32") from exc
    if args.images:
        from shared.imageio import list_images

        paths = list_images(args.images)
        source = os.path.relpath(args.images)
    else:
        paths = bench.default_images()
        source = os.path.relpath(paths[0].parent) if paths else "(none)"
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        raise CliError(f"no images found in {source}")
    total = len(paths) * sum(len(v) for v in qualities.values())
    with tqdm(total=total, desc="encode+decode", unit="pt", disable=args.no_progress) as bar:
        result = bench.run_bench(paths, qualities, {"bpg": {"level": args.bpg_level}}, progress=bar.update)
    title = (f"{len(paths)} images from {source} — rate–distortion of standard codecs "
             f"(RGB PSNR/MS-SSIM, bpp = Σ file bytes×8 / Σ pixels)")
    files = bench.write_outputs(result, Path(args.out), title)
    print(bench.markdown_table(result))
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prepicm", description="PrepICM: codecs, evaluation and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    add_codec_commands(sub)
    add_eval_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv, _user_errors())


if __name__ == "__main__":
    sys.exit(main())
