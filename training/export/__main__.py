"""CLI: ``python -m training.export --variant paper_qa --out artifacts/npp-paper_qa [--checkpoint ckpt.pt]
[--tensorrt fp16 fp32]``.

``--tensorrt`` also prebuilds TensorRT engines for this machine's GPU into the artifact (default
profile; ``python -m training.export.tensorrt`` takes custom shapes). Without it, edges build
their own engine from the ONNX at first start and cache it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from shared.conditioning import conditioning_codecs
from shared.manifest import ManifestError
from shared.tensorrt_engine import PRECISIONS
from training.export.artifact import PAPER_QPS, ExportOptions, export_artifact
from training.export.errors import ExportError
from training.export.tensorrt import build_engines
from training.npp.variants import NPP_VARIANTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    parser.add_argument("--variant", required=True, choices=NPP_VARIANTS.names())
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--checkpoint", type=Path, help="trained weights (omit for an UNTRAINED export)")
    parser.add_argument("--qps", type=int, nargs="+", default=None,
                        help=f"BPG QPs trained for (default: QA {list(PAPER_QPS)}, else 29; checkpoint wins)")
    parser.add_argument("--serves", nargs="+", default=conditioning_codecs(), choices=conditioning_codecs())
    parser.add_argument("--parity-images", type=int, default=2, help="Kodak images in the parity check")
    parser.add_argument("--tensorrt", nargs="+", choices=list(PRECISIONS), metavar="PRECISION",
                        help="also prebuild TensorRT engines (fp16, fp32) for this GPU into the artifact")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = ExportOptions(qps=tuple(args.qps) if args.qps else None, serves_codecs=tuple(args.serves),
                            parity_kodak=args.parity_images)
    try:
        manifest = export_artifact(args.variant, args.out, args.checkpoint, options)
    except (ExportError, ManifestError, FileNotFoundError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    status = "trained" if manifest.training.trained else "UNTRAINED"
    print(f"{args.out}: {manifest.variant} ({manifest.parameters:,} params, {status}); parity {manifest.parity}")
    if args.tensorrt:
        try:
            engines = build_engines(args.out, tuple(args.tensorrt))
        except (ExportError, ManifestError) as exc:
            print(f"TensorRT engines not built (the ONNX/TorchScript artifact in {args.out} is complete; "
                  f"edges build engines themselves): {exc}", file=sys.stderr)
            return 1
        for e in engines:
            print(f"{e.path}: {e.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
