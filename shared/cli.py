"""The `prepicm` command line: codecs, encode, decode, info, bench (and evaluation commands)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.codecs import CODECS, CodecError, detect_codec, get_codec
from shared.imageio import ImageReadError, read_rgb, write_png
from shared.registry import RegistryError


class CliError(Exception):
    """A user error the CLI reports as one line with a non-zero exit code."""


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise CliError(f"codec option {pair!r} is not KEY=VALUE")
        key, value = pair.split("=", 1)
        opts[key.replace("-", "_")] = int(value) if value.lstrip("-").isdigit() else value
    return opts


def _make_codec(name: str, options: Sequence[str]) -> Any:
    try:
        return get_codec(name, **_parse_options(options))
    except TypeError as exc:
        raise CliError(f"bad option for codec {name!r}: {exc}") from exc


def cmd_codecs(args: argparse.Namespace) -> int:
    rows = []
    for name in CODECS.names():
        cls = CODECS.get(name)
        reason = cls.unavailable_reason()
        q = cls.quality
        rows.append({
            "name": name, "available": reason is None, "reason": reason, "extension": cls.extension,
            "quality": f"{q.name} {q.minimum}..{q.maximum} (default {q.default}, "
                       f"{'higher' if q.higher_is_better else 'lower'} is better)",
            "description": cls.description,
        })
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        status = "yes" if r["available"] else f"no — {r['reason']}"
        print(f"{r['name']:<5} {r['extension']:<6} {r['quality']:<48} available: {status}")
        print(f"      {r['description']}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    codec = _make_codec(args.codec, args.option)
    rgb = read_rgb(args.input)
    data = codec.encode(rgb, args.quality)
    out = Path(args.output) if args.output else Path(args.input).with_suffix(codec.extension)
    out.write_bytes(data)
    bpp = len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
    print(f"{out}: {len(data)} bytes, {bpp:.4f} bpp ({codec.name}, {codec.quality.name} "
          f"{args.quality if args.quality is not None else codec.quality.default})")
    return 0


def _read_stream(path: str) -> tuple[bytes, str]:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"file not found: {p}")
    data = p.read_bytes()
    return data, detect_codec(data, p.name)


def cmd_decode(args: argparse.Namespace) -> int:
    data, name = _read_stream(args.input)
    rgb = get_codec(args.codec or name).decode(data)
    write_png(args.output, rgb)
    print(f"{args.output}: {rgb.shape[1]}x{rgb.shape[0]} ({name})")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    data, name = _read_stream(args.file)
    info = get_codec(args.codec or name).info(data)
    payload = {"codec": info.codec, "width": info.width, "height": info.height,
               "pixel_format": info.pixel_format, "bit_depth": info.bit_depth, "bytes": len(data),
               **info.extra}
    if args.json:
        print(json.dumps(payload, indent=1))
    else:
        for k, v in payload.items():
            print(f"{k}: {v}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from shared.codecs import bench

    names = args.codecs or [n for n in CODECS.names() if CODECS.get(n).unavailable_reason() is None]
    for n in names:
        CODECS.get(n)  # unknown names fail here with the list of choices
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
    codec_options = {"bpg": {"level": args.bpg_level}}
    total = len(paths) * sum(len(v) for v in qualities.values())
    with tqdm(total=total, desc="encode+decode", unit="pt", disable=args.no_progress) as bar:
        result = bench.run_bench(paths, qualities, codec_options, progress=bar.update)
    title = (f"{len(paths)} images from {source} — rate–distortion of standard codecs "
             f"(RGB PSNR/MS-SSIM, bpp = file bytes×8/pixels)")
    out = Path(args.out)
    files = bench.write_outputs(result, out, title)
    print(bench.markdown_table(result))
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prepicm", description="PrepICM: codecs, evaluation and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    codec_choices = CODECS.names()

    p = sub.add_parser("codecs", help="list codecs, their quality scales and availability")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_codecs)

    p = sub.add_parser("encode", help="encode an image file")
    p.add_argument("input")
    p.add_argument("-c", "--codec", required=True, choices=codec_choices)
    p.add_argument("-q", "--quality", type=int, default=None, help="quality / QP (codec default if omitted)")
    p.add_argument("-o", "--output")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="codec option, e.g. level=8 or pixel_format=444 for bpg")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode a compressed file to PNG")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-c", "--codec", choices=codec_choices, help="override codec detection")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("info", help="read a compressed file's header without decoding")
    p.add_argument("file")
    p.add_argument("-c", "--codec", choices=codec_choices)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="rate–distortion and speed of every codec over a folder of images")
    p.add_argument("--images", help="folder of images (default: ../shared/data/kodak, else packaged samples)")
    p.add_argument("--codecs", nargs="+", choices=codec_choices)
    p.add_argument("--qualities", nargs="+", metavar="CODEC=Q1,Q2,...")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--quick", action="store_true", help="fewer qualities per codec")
    p.add_argument("--bpg-level", type=int, default=8, choices=range(10), metavar="0-9")
    p.add_argument("--out", default="results/codec_bench")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_bench)

    try:
        from shared.evaluation.cli import add_eval_commands
    except ImportError:  # evaluation extra not installed
        pass
    else:
        add_eval_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, CodecError, RegistryError, ImageReadError, FileNotFoundError) as exc:
        print(f"prepicm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prepicm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
