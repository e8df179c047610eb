"""The codec commands of `prepicm` (codecs, encode, decode, info) and its one-line errors.

The `prepicm` command itself is the evaluation application's (`evaluation.cli:main`), which
mounts these with :func:`add_codec_commands` beside eval, bdrate, plot and bench.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.codecs import CODECS, CodecError, detect_codec, get_codec
from shared.imageio import ImageReadError, read_rgb, write_png
from shared.pipeline import EncodePipeline, decode
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
    quality = codec.quality.default if args.quality is None else args.quality
    enc = EncodePipeline(codec).encode(rgb, quality)
    out = Path(args.output) if args.output else Path(args.input).with_suffix(codec.extension)
    out.write_bytes(enc.bitstream)
    print(f"{out}: {len(enc.bitstream)} bytes, {enc.bpp:.4f} bpp ({codec.name}, {codec.quality.name} {quality})")
    return 0


def _read_stream(path: str) -> tuple[bytes, str]:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"file not found: {p}")
    data = p.read_bytes()
    return data, detect_codec(data, p.name)


def cmd_decode(args: argparse.Namespace) -> int:
    data, name = _read_stream(args.input)
    rgb = decode(data, args.codec or name).image
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


def add_codec_commands(sub: Any) -> None:
    """Register ``codecs``, ``encode``, ``decode`` and ``info`` on a subparsers object."""
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


#: Library errors every `prepicm` command reports as one line (exit 2).
USER_ERRORS: tuple[type[BaseException], ...] = (CliError, CodecError, RegistryError, ImageReadError,
                                                 FileNotFoundError)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                user_errors: tuple[type[BaseException], ...] = USER_ERRORS) -> int:
    """Parse ``argv`` and run the chosen command: user errors are one line on stderr, exit 2."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_errors as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
