"""TensorRT engines for the NPP: build from the exported ONNX, key, cache, deserialize.

Why engines are built on the edge
---------------------------------
A serialized TensorRT engine holds kernels chosen for one GPU model (really one compute capability
and SM count) by one TensorRT version; another GPU or TensorRT refuses to load it, or runs it
slower. A camera fleet mixes GPUs (Jetson Orin, T4, L4, ...) and upgrades TensorRT with its OS
image, so the portable thing to ship is the ONNX in the exported artifact. An edge whose GPU has
no prebuilt engine in the artifact's manifest builds one from that ONNX at first start (seconds to
minutes), stores it in a local engine cache and reuses it on every later start. ``training`` can
still prebuild engines into the artifact for GPUs known in advance (``python -m training.export
... --tensorrt fp16``): both sides call this module, so they build the same thing the same way.

The cache key is everything that makes an engine valid: GPU model, compute capability, TensorRT
version, precision, the optimisation-profile shapes and the sha256 of the ONNX file. Change any
of them and the key (and so the file name) changes; nothing stale is ever loaded.

Layout: the pure-Python part (``Profile``, ``EngineKey``, ``EngineCache``) needs nothing
optional and is tested everywhere; the TensorRT / CUDA part (``import_tensorrt``, ``detect_gpu``,
``build_serialized_engine``, ``deserialize_engine``) imports ``tensorrt`` and ``cuda-python``
lazily inside functions, and raises ``TensorRTUnavailableError`` naming
``pip install 'prepicm[tensorrt]'`` when they are missing. This is the only module in the
project that imports ``tensorrt``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shared.atomic import atomic_write_bytes
from shared.manifest import sha256_file
from shared.paths import cache_dir

log = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
Precision = Literal["fp16", "fp32"]
PRECISIONS: tuple[Precision, ...] = ("fp16", "fp32")
EXTRA = "pip install 'prepicm[tensorrt]'"
#: Environment variable naming the engine cache directory (overrides the default below).
ENGINE_CACHE_ENV = "PREPICM_ENGINE_CACHE"
#: Bump when the build recipe changes in a way that makes older cached engines wrong.
KEY_SCHEMA = 1
IMAGE_INPUT = "image"


# -- errors ---------------------------------------------------------------------------------------


class EngineError(Exception):
    """A TensorRT engine cannot be built, cached or loaded."""


class TensorRTUnavailableError(EngineError):
    """TensorRT, cuda-python or a CUDA GPU is missing here; ``package`` names what is missing
    (None when the packages are present but no GPU is visible)."""

    def __init__(self, message: str, package: str | None = None) -> None:
        super().__init__(message)
        self.package = package


class EngineBuildError(EngineError):
    """TensorRT could not parse the ONNX or build an engine from it."""


class EngineCacheError(EngineError):
    """The engine cache directory cannot be created or written."""


# -- profile and key (pure Python) ---------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One optimisation profile for the image input (N, 3, H, W); other inputs (the QA
    conditioning, shape (N, 1)) follow its batch dimension.

    The default covers thumbnails (16×16) to 1080p frames (padded to 1088×1920) with batch ≤ 4,
    tuned for a single 512×768 frame. A smaller ``max`` builds faster and uses less memory.
    """

    min: Shape = (1, 3, 16, 16)
    opt: Shape = (1, 3, 512, 768)
    max: Shape = (4, 3, 1088, 1920)

    def __post_init__(self) -> None:
        for name, shape in (("min", self.min), ("opt", self.opt), ("max", self.max)):
            if len(shape) != 4 or shape[1] != 3 or any(int(s) < 1 for s in shape):
                raise ValueError(f"profile {name} {shape} must be (N, 3, H, W) with positive sizes")
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max, strict=True)):
            raise ValueError(f"profile needs min ≤ opt ≤ max per dimension, got {self.min} {self.opt} {self.max}")

    def covers(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(a <= s <= b for a, s, b in zip(self.min, shape, self.max, strict=True))

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass(frozen=True)
class GpuInfo:
    """What of the GPU a TensorRT engine depends on."""

    name: str  # marketing name, e.g. "NVIDIA H200", "Orin"
    compute_capability: str  # "major.minor", e.g. "9.0"

    @property
    def sm(self) -> str:
        return self.compute_capability.replace(".", "")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "unknown"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's validity depends on; ``digest`` hashes all of it."""

    gpu: str
    compute_capability: str
    tensorrt_version: str
    precision: Precision
    profile: Profile
    onnx_sha256: str

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.onnx_sha256):
            raise ValueError(f"onnx_sha256 must be 64 lowercase hex digits, got {self.onnx_sha256!r}")

    @classmethod
    def for_gpu(cls, gpu: GpuInfo, tensorrt_version: str, precision: Precision, profile: Profile,
                onnx_sha256: str) -> EngineKey:
        return cls(gpu.name, gpu.compute_capability, tensorrt_version, precision, profile, onnx_sha256)

    def fields(self) -> dict[str, Any]:
        return {"schema": KEY_SCHEMA, "gpu": self.gpu, "compute_capability": self.compute_capability,
                "tensorrt_version": self.tensorrt_version, "precision": self.precision,
                "profile": self.profile.as_dict(), "onnx_sha256": self.onnx_sha256}

    def digest(self) -> str:
        canonical = json.dumps(self.fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def filename(self) -> str:
        """Readable prefix (GPU, SM, TensorRT, precision) + a digest of the whole key."""
        sm = self.compute_capability.replace(".", "")
        return (f"{_slug(self.gpu)}-sm{_slug(sm)}-trt{_slug(self.tensorrt_version)}-{self.precision}-"
                f"{self.digest()[:16]}.engine")

    def describe(self) -> str:
        p = self.profile
        return (f"{self.gpu} (sm {self.compute_capability}), TensorRT {self.tensorrt_version}, {self.precision}, "
                f"profile {p.min}..{p.max} opt {p.opt}, ONNX {self.onnx_sha256[:12]}")


# -- the local engine cache (pure Python) --------------------------------------------------------


def default_cache_dir() -> Path:
    """``$PREPICM_ENGINE_CACHE``, else ``engines/`` under the project's one cache root
    (:func:`shared.paths.cache_dir`)."""
    return cache_dir("engines")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> Path:
    """A reader (another edge process, a restart after a crash) never sees a half-written engine."""
    return atomic_write_bytes(path, data)


@dataclass(frozen=True)
class CacheLookup:
    """Result of a cache lookup: ``path`` when usable, else None; ``reason`` says why, for logs."""

    path: Path | None
    reason: str

    @property
    def hit(self) -> bool:
        return self.path is not None


@dataclass
class EngineCache:
    """Engines on local disk, one ``<key.filename()>`` per key plus a ``.json`` sidecar holding the
    full key and the engine's sha256 (checked on every lookup, so a corrupted or foreign file is
    rebuilt instead of loaded)."""

    directory: Path = field(default_factory=default_cache_dir)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).expanduser()

    def path_for(self, key: EngineKey) -> Path:
        return self.directory / key.filename()

    def _meta_path(self, key: EngineKey) -> Path:
        return self.path_for(key).with_suffix(".json")

    def lookup(self, key: EngineKey) -> CacheLookup:
        path, meta_path = self.path_for(key), self._meta_path(key)
        if not path.is_file():
            return CacheLookup(None, f"no cached engine {path.name} in {self.directory}")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return CacheLookup(None, f"cached engine {path} has no readable {meta_path.name} ({exc})")
        if meta.get("key") != key.fields():
            return CacheLookup(None, f"cached engine {path} was built for a different key: {meta.get('key')}")
        actual = sha256_file(path)
        if actual != meta.get("engine_sha256"):
            return CacheLookup(None, f"cached engine {path}: sha256 {actual[:12]}… differs from the recorded "
                                     f"{str(meta.get('engine_sha256'))[:12]}… (corrupted)")
        return CacheLookup(path, f"cached engine {path} (built {meta.get('created_at', '?')})")

    def store(self, key: EngineKey, data: bytes) -> Path:
        if not data:
            raise EngineCacheError("refusing to cache an empty engine")
        path = self.path_for(key)
        meta = {"key": key.fields(), "engine_sha256": sha256_bytes(data), "size_bytes": len(data),
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        try:
            write_atomic(path, data)
            # The sidecar goes second: an engine without a matching sidecar is a miss, never a hit.
            write_atomic(self._meta_path(key), (json.dumps(meta, indent=2) + "\n").encode())
        except OSError as exc:
            raise EngineCacheError(
                f"cannot write the TensorRT engine cache at {self.directory}: {exc} "
                f"(set {ENGINE_CACHE_ENV} or the backend's cache_dir to a writable directory)"
            ) from exc
        return path

    def evict(self, key: EngineKey) -> None:
        for p in (self._meta_path(key), self.path_for(key)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    @contextlib.contextmanager
    def _lock(self, key: EngineKey) -> Iterator[None]:
        """Exclusive per-key lock, so edge workers starting together build an engine once."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fh = (self.directory / f"{key.filename()}.lock").open("a+b")
        except OSError as exc:
            raise EngineCacheError(
                f"cannot create the TensorRT engine cache directory {self.directory}: {exc} "
                f"(set {ENGINE_CACHE_ENV} or the backend's cache_dir to a writable directory)"
            ) from exc
        with fh:
            try:
                import fcntl
            except ImportError:  # not POSIX: fall back to a process-local lock
                with _LOCAL_LOCK:
                    yield
                return
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def get_or_build(self, key: EngineKey, build: Callable[[], bytes],
                     on_miss: Callable[[CacheLookup], None] | None = None) -> tuple[Path, CacheLookup]:
        """The cached engine for ``key``, building and storing it first when missing or invalid.

        ``on_miss`` is told why before a build starts (default: an INFO log line), since a build
        takes seconds to minutes. Returns the path and the lookup that decided it (``hit`` False:
        it was just built, and ``reason`` says why).
        """
        with self._lock(key):
            found = self.lookup(key)
            if found.path is not None:
                return found.path, found
            if on_miss is None:
                log.info("building TensorRT engine for %s: %s", key.describe(), found.reason)
            else:
                on_miss(found)
            return self.store(key, build()), found


_LOCAL_LOCK = threading.Lock()


# -- TensorRT / CUDA (imported lazily) -----------------------------------------------------------


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            f"TensorRT is not installed; building or running TensorRT engines needs it and an NVIDIA GPU: {EXTRA}",
            package="tensorrt",
        ) from exc
    return tensorrt


def tensorrt_version() -> str:
    return str(import_tensorrt().__version__)


def import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:  # cuda-python < 12.6 layout
            from cuda import cudart
        except ImportError as exc:
            raise TensorRTUnavailableError(f"cuda-python is not installed: {EXTRA}", package="cuda-python") from exc
    return cudart


def detect_gpu(device: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``device``."""
    cudart = import_cudart()
    ok = cudart.cudaError_t.cudaSuccess
    err, count = cudart.cudaGetDeviceCount()
    if err != ok or count == 0:
        raise TensorRTUnavailableError("no CUDA GPU is visible (cudaGetDeviceCount found none)")
    if not 0 <= device < count:
        raise TensorRTUnavailableError(f"CUDA device {device} does not exist ({count} visible)")
    err, props = cudart.cudaGetDeviceProperties(device)
    if err != ok:
        raise TensorRTUnavailableError(f"cudaGetDeviceProperties({device}) failed: {err}")
    name = props.name
    text = (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).split("\x00")[0].strip()
    return GpuInfo(name=text, compute_capability=f"{int(props.major)}.{int(props.minor)}")


def supports_fp16_flag(trt: Any | None = None) -> bool:
    """TensorRT 10 builds FP16 from an FP32 ONNX with ``BuilderFlag.FP16``; TensorRT 11 removed
    the flag (strong typing only), so there only FP32 can be built from our FP32 ONNX."""
    trt = trt or import_tensorrt()
    return hasattr(trt.BuilderFlag, "FP16")


_LOGGER: Any = None


def trt_logger() -> Any:
    """One TensorRT logger per process (TensorRT expects a single logger instance)."""
    global _LOGGER
    if _LOGGER is None:
        trt = import_tensorrt()
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def build_serialized_engine(onnx_path: Path, precision: Precision, profile: Profile,
                            workspace_gib: float = 4.0, image_input: str = IMAGE_INPUT) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine with one optimisation profile.

    The image input gets ``profile``'s shapes; every other input (the QA conditioning, (N, 1))
    may be dynamic only in its batch dimension, which follows the image's batch.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    trt = import_tensorrt()
    logger = trt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10+: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16":
        if not supports_fp16_flag(trt):
            raise EngineBuildError(
                f"TensorRT {trt.__version__} has no BuilderFlag.FP16 (strongly typed builds only); "
                "build fp32, or use TensorRT 10 for fp16 engines"
            )
        config.set_flag(trt.BuilderFlag.FP16)
    opt = builder.create_optimization_profile()
    names = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        names.append(tensor.name)
        if tensor.name == image_input:
            opt.set_shape(tensor.name, profile.min, profile.opt, profile.max)
            continue
        dims = tuple(int(d) for d in tensor.shape)
        if any(d < 0 for d in dims[1:]):
            raise EngineBuildError(
                f"{onnx_path}: input {tensor.name!r} has dynamic dims {dims} beyond the batch; "
                "only the image input may vary in H and W"
            )
        rest = dims[1:]
        opt.set_shape(tensor.name, (profile.min[0], *rest), (profile.opt[0], *rest), (profile.max[0], *rest))
    if image_input not in names:
        raise EngineBuildError(f"{onnx_path} has no input {image_input!r} (inputs: {names})")
    config.add_optimization_profile(opt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"TensorRT failed to build a {precision} engine from {onnx_path} "
            f"(profile {profile.min}..{profile.max}; the TensorRT log above says why)"
        )
    return bytes(serialized)


def build_engine_file(onnx_path: Path, out_path: Path, precision: Precision, profile: Profile,
                      workspace_gib: float = 4.0) -> Path:
    """Build and write an engine atomically (used for engines shipped inside an artifact)."""
    return write_atomic(out_path, build_serialized_engine(onnx_path, precision, profile, workspace_gib))


@dataclass
class LoadedEngine:
    """A deserialized engine and the runtime that must outlive it."""

    runtime: Any
    engine: Any


def deserialize_engine(data: bytes, source: Path | str = "<bytes>") -> LoadedEngine:
    trt = import_tensorrt()
    runtime = trt.Runtime(trt_logger())
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise EngineError(
            f"TensorRT {trt.__version__} could not deserialize {source} (built by another TensorRT "
            "version or for another GPU, or corrupted)"
        )
    return LoadedEngine(runtime=runtime, engine=engine)


def engine_key(onnx_sha256: str, precision: Precision, profile: Profile, device: int = 0) -> EngineKey:
    """The key of an engine built here, now (queries the GPU and the TensorRT version)."""
    version = tensorrt_version()  # first: a missing TensorRT is the error worth reporting
    return EngineKey.for_gpu(detect_gpu(device), version, precision, profile, onnx_sha256)


__all__ = [
    "ENGINE_CACHE_ENV",
    "EXTRA",
    "PRECISIONS",
    "CacheLookup",
    "EngineBuildError",
    "EngineCache",
    "EngineCacheError",
    "EngineError",
    "EngineKey",
    "GpuInfo",
    "LoadedEngine",
    "Precision",
    "Profile",
    "TensorRTUnavailableError",
    "build_engine_file",
    "build_serialized_engine",
    "default_cache_dir",
    "deserialize_engine",
    "detect_gpu",
    "engine_key",
    "import_cudart",
    "import_tensorrt",
    "supports_fp16_flag",
    "tensorrt_version",
    "trt_logger",
    "write_atomic",
]
