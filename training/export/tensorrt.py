"""Prebuild TensorRT engines into an exported artifact (FP16 and/or FP32) and list them in its manifest.

An engine runs only on the GPU model and TensorRT version that built it, so the artifact's portable
model is its ONNX and edges build their own engine from it at first start (``shared.tensorrt_engine``,
cached locally). Prebuilding here is for GPUs known in advance: an edge whose GPU and TensorRT match
an engine listed in the manifest loads it and skips the build. The build itself, the cache key and the
file naming live in ``shared.tensorrt_engine``, the same code the edge runs; this module only puts the
engine inside the artifact (``engines/<key>.engine``) and records it.

``python -m training.export.tensorrt --artifact artifacts/npp-paper_qa [--precision fp16 fp32]``
(or ``python -m training.export ... --tensorrt fp16``). Needs TensorRT and an NVIDIA GPU:
``pip install 'prepicm[tensorrt]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from shared import tensorrt_engine as te
from shared.manifest import EngineEntry, ManifestError, describe_file, load_manifest, verify_file, write_manifest
from shared.tensorrt_engine import EngineKey, Precision, Profile, Shape
from training.export.errors import ExportError, TensorRTUnavailableError

log = logging.getLogger(__name__)

ENGINE_DIR = "engines"


@contextlib.contextmanager
def _as_export_errors() -> Iterator[None]:
    """The shared builder's errors, as this package's typed errors (the CLI catches ExportError)."""
    try:
        yield
    except te.TensorRTUnavailableError as exc:
        raise TensorRTUnavailableError(str(exc)) from exc
    except te.EngineError as exc:
        raise ExportError(str(exc)) from exc


def engine_relpath(key: EngineKey) -> str:
    """Where an engine lives inside an artifact, relative to its manifest."""
    return f"{ENGINE_DIR}/{key.filename()}"


def build_engine(onnx_path: Path, out_path: Path, precision: Precision, profile: Profile,
                 workspace_gib: float = 4.0) -> Path:
    """Parse the ONNX, build a serialized engine with one optimisation profile, write it."""
    with _as_export_errors():
        return te.build_engine_file(onnx_path, out_path, precision, profile, workspace_gib)


def build_engines(artifact_dir: Path, precisions: tuple[Precision, ...] = ("fp16", "fp32"),
                  profile: Profile | None = None, rebuild: bool = False, device: int = 0,
                  workspace_gib: float = 4.0) -> list[EngineEntry]:
    """Build (or reuse) one engine per precision for this machine's GPU and record them in the manifest.

    Entries for other GPUs / TensorRT versions are kept; those for this one are replaced.
    """
    profile = profile or Profile()
    with _as_export_errors():
        version = te.tensorrt_version()
        gpu = te.detect_gpu(device)
    manifest = load_manifest(artifact_dir)
    onnx_path = verify_file(artifact_dir, manifest.onnx)
    kept = [e for e in manifest.engines
            if not (e.gpu == gpu.name and e.compute_capability == gpu.compute_capability
                    and e.tensorrt_version == version and e.precision in precisions)]
    built = []
    for precision in precisions:
        key = EngineKey.for_gpu(gpu, version, precision, profile, manifest.onnx.sha256)
        rel = engine_relpath(key)
        path = artifact_dir / rel
        if rebuild or not path.is_file():
            log.info("building %s TensorRT engine for %s", precision, key.describe())
            build_engine(onnx_path, path, precision, profile, workspace_gib)
        else:  # the file name carries the digest of the whole key: same name, same inputs
            log.info("reusing engine %s (same key: %s)", rel, key.describe())
        f = describe_file(artifact_dir, rel)
        built.append(EngineEntry(path=f.path, sha256=f.sha256, size_bytes=f.size_bytes, gpu=gpu.name,
                                 compute_capability=gpu.compute_capability,
                                 tensorrt_version=version, precision=precision,
                                 profile_min=profile.min, profile_opt=profile.opt, profile_max=profile.max))
    write_manifest(manifest.model_copy(update={"engines": kept + built}), artifact_dir)
    return built


def parse_shape(text: str) -> Shape:
    """``NxHxW`` → (N, 3, H, W)."""
    try:
        n, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not NxHxW (e.g. 1x512x768)") from exc
    return (n, 3, h, w)


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    default = Profile()
    for name in ("min", "opt", "max"):
        n, _, h, w = getattr(default, name)
        parser.add_argument(f"--{name}", type=parse_shape, default=(n, 3, h, w),
                            help=f"{name} shape of the optimisation profile, NxHxW (default {n}x{h}x{w})")


def profile_from_args(args: argparse.Namespace) -> Profile:
    try:
        return Profile(args.min, args.opt, args.max)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export.tensorrt", description=__doc__)
    parser.add_argument("--artifact", type=Path, required=True, help="directory written by training.export")
    parser.add_argument("--precision", nargs="+", choices=list(te.PRECISIONS), default=list(te.PRECISIONS))
    add_profile_arguments(parser)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--workspace-gib", type=float, default=4.0, help="builder workspace limit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        built = build_engines(args.artifact, tuple(args.precision), profile_from_args(args), args.rebuild,
                              args.device, args.workspace_gib)
    except (ExportError, ManifestError) as exc:
        print(f"tensorrt build failed: {exc}", file=sys.stderr)
        return 1
    for e in built:
        print(f"{e.path}: {e.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
