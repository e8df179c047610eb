"""Build TensorRT engines from an exported artifact's ONNX (FP16 and/or FP32) and record them in its
manifest. Engines run only on the GPU model and TensorRT version that built them, so each is cached
under ``engines/`` by that key and the edge picks the one matching its machine.

``python -m training.export.tensorrt --artifact artifacts/npp-paper_qa [--precision fp16 fp32]``

Needs TensorRT and an NVIDIA GPU: ``pip install 'prepicm[tensorrt]'``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.manifest import EngineEntry, ManifestError, describe_file, load_manifest, verify_file, write_manifest
from training.export.errors import ExportError, TensorRTUnavailableError

log = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]


@dataclass(frozen=True)
class Profile:
    """One optimisation profile for the image input (the conditioning input follows its batch).

    The default covers thumbnails (16×16) to 1080p frames (padded to 1088×1920) with batch ≤ 4,
    optimised for a single 512×768 frame.
    """

    min: Shape = (1, 3, 16, 16)
    opt: Shape = (1, 3, 512, 768)
    max: Shape = (4, 3, 1088, 1920)


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "building TensorRT engines needs TensorRT and a CUDA GPU: pip install 'prepicm[tensorrt]'"
        ) from exc
    return tensorrt


def gpu_name() -> str:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise TensorRTUnavailableError("cuda-python is missing: pip install 'prepicm[tensorrt]'") from exc
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count == 0:
        raise TensorRTUnavailableError("no CUDA GPU is visible; TensorRT engines must be built on the target GPU")
    err, props = cudart.cudaGetDeviceProperties(0)
    name = props.name
    return (name.decode() if isinstance(name, bytes) else str(name)).rstrip("\x00").strip()


def engine_filename(gpu: str, trt_version: str, precision: str, onnx_sha256: str) -> str:
    """Cache key: GPU model, TensorRT version, precision and the ONNX it came from."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-").lower()
    return f"engines/{slug}-trt{trt_version}-{precision}-{onnx_sha256[:12]}.engine"


def build_engine(onnx_path: Path, out_path: Path, precision: str, profile: Profile,
                 quantization_adaptive: bool, workspace_gib: float = 4.0) -> Path:
    """Parse the ONNX, build a serialized engine with one optimisation profile, write it."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    opt = builder.create_optimization_profile()
    opt.set_shape("image", profile.min, profile.opt, profile.max)
    if quantization_adaptive:
        opt.set_shape("cond", (profile.min[0], 1), (profile.opt[0], 1), (profile.max[0], 1))
    config.add_optimization_profile(opt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build a {precision} engine from {onnx_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(bytes(serialized))
    return out_path


def build_engines(artifact_dir: Path, precisions: tuple[str, ...] = ("fp16", "fp32"),
                  profile: Profile | None = None, rebuild: bool = False) -> list[EngineEntry]:
    """Build (or reuse from the cache) one engine per precision and record them in the manifest."""
    trt = import_tensorrt()
    profile = profile or Profile()
    manifest = load_manifest(artifact_dir)
    onnx_path = verify_file(artifact_dir, manifest.onnx)
    gpu, version = gpu_name(), trt.__version__
    engines = [e for e in manifest.engines
               if not (e.gpu == gpu and e.tensorrt_version == version and e.precision in precisions)]
    built = []
    for precision in precisions:
        rel = engine_filename(gpu, version, precision, manifest.onnx.sha256)
        path = artifact_dir / rel
        if rebuild or not path.is_file():
            log.info("building %s TensorRT engine for %s (TensorRT %s)", precision, gpu, version)
            build_engine(onnx_path, path, precision, profile, manifest.quantization_adaptive)
        else:
            log.info("reusing cached engine %s", rel)
        f = describe_file(artifact_dir, rel)
        built.append(EngineEntry(path=f.path, sha256=f.sha256, size_bytes=f.size_bytes, gpu=gpu,
                                 tensorrt_version=version, precision=precision,  # type: ignore[arg-type]
                                 profile_min=profile.min, profile_opt=profile.opt, profile_max=profile.max))
    write_manifest(manifest.model_copy(update={"engines": engines + built}), artifact_dir)
    return built


def _shape(text: str) -> Shape:
    n, h, w = (int(v) for v in text.lower().split("x"))
    return (n, 3, h, w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export.tensorrt", description=__doc__)
    parser.add_argument("--artifact", type=Path, required=True, help="directory written by training.export")
    parser.add_argument("--precision", nargs="+", choices=["fp16", "fp32"], default=["fp16", "fp32"])
    parser.add_argument("--min", type=_shape, default="1x16x16", help="NxHxW")
    parser.add_argument("--opt", type=_shape, default="1x512x768", help="NxHxW")
    parser.add_argument("--max", type=_shape, default="4x1088x1920", help="NxHxW")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        built = build_engines(args.artifact, tuple(args.precision), Profile(args.min, args.opt, args.max),
                              args.rebuild)
    except (ExportError, ManifestError) as exc:
        print(f"tensorrt build failed: {exc}", file=sys.stderr)
        return 1
    for e in built:
        print(f"{e.path}: {e.precision}, {e.gpu}, TensorRT {e.tensorrt_version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
