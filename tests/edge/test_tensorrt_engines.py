"""Where the edge's TensorRT engine comes from: the artifact's prebuilt engine, the local cache, or a
build from the artifact's ONNX. The decision logic runs here on CPU with a stand-in builder that
returns fake engine bytes (TensorRT itself is exercised by the GPU tests at the end)."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.backends import BackendError, BackendUnavailableError, create_backend, load_artifact
from edge.backends.tensorrt_backend import find_engine, resolve_engine, wanted_precisions
from shared.manifest import ArtifactMismatchError, EngineEntry, describe_file, load_manifest, write_manifest
from shared.tensorrt_engine import EngineCache, GpuInfo, Precision, Profile

GPU = GpuInfo(name="NVIDIA Test GPU", compute_capability="8.9")
TRT = "10.9.0.34"
SMALL = Profile(opt=(1, 3, 64, 64), max=(2, 3, 256, 256))


class RecordingBuilder:
    """Stands in for ``shared.tensorrt_engine.build_serialized_engine``: returns bytes derived from
    the ONNX it was given, so a test can tell which ONNX and precision an engine came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Profile]] = []

    def __call__(self, onnx_path: Path, precision: Precision, profile: Profile) -> bytes:
        self.calls.append((onnx_path.name, precision, profile))
        return b"FAKE-ENGINE:" + precision.encode() + hashlib.sha256(onnx_path.read_bytes()).digest()


def _expected_bytes(artifact_dir: Path, precision: str) -> bytes:
    return b"FAKE-ENGINE:" + precision.encode() + hashlib.sha256((artifact_dir / "model.onnx").read_bytes()).digest()


def _add_prebuilt(artifact_dir: Path, gpu: GpuInfo, precision: Precision, payload: bytes) -> Path:
    """Put an engine file in the artifact and list it in the manifest, as training.export.tensorrt does."""
    rel = f"engines/prebuilt-{precision}.engine"
    (artifact_dir / "engines").mkdir(exist_ok=True)
    (artifact_dir / rel).write_bytes(payload)
    manifest = load_manifest(artifact_dir)
    f = describe_file(artifact_dir, rel)
    entry = EngineEntry(path=f.path, sha256=f.sha256, size_bytes=f.size_bytes, gpu=gpu.name,
                        compute_capability=gpu.compute_capability, tensorrt_version=TRT,
                        precision=precision, profile_min=SMALL.min, profile_opt=SMALL.opt, profile_max=SMALL.max)
    write_manifest(manifest.model_copy(update={"engines": [*manifest.engines, entry]}), artifact_dir)
    return artifact_dir / rel


def test_wanted_precisions() -> None:
    assert wanted_precisions(None) == ("fp16", "fp32")
    assert wanted_precisions(None, fp16_supported=False) == ("fp32",)
    assert wanted_precisions("fp32") == ("fp32",)
    with pytest.raises(BackendError, match="precision"):
        wanted_precisions("int8")


def test_builds_from_onnx_once_then_reuses_the_cache(artifact_copy: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    artifact, build = load_artifact(artifact_copy), RecordingBuilder()
    cache = EngineCache(tmp_path / "engine-cache")
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        first = resolve_engine(artifact, GPU, TRT, ("fp16", "fp32"), cache, SMALL, build)
    assert first.source == "built" and first.precision == "fp16" and first.profile == SMALL
    assert build.calls == [("model.onnx", "fp16", SMALL)]
    assert first.path.parent == cache.directory and first.path.read_bytes() == _expected_bytes(artifact_copy, "fp16")
    assert first.key is not None and first.key.onnx_sha256 == artifact.manifest.onnx.sha256
    assert first.key.gpu == GPU.name and first.key.compute_capability == "8.9" and first.key.tensorrt_version == TRT
    building = [r.getMessage() for r in caplog.records if "building a fp16 engine" in r.getMessage()]
    assert building, "the edge must log that it is building"
    assert "the artifact has no engine for NVIDIA Test GPU (sm 8.9) / TensorRT 10.9.0.34" in building[0]
    assert "no cached engine" in building[0] and str(cache.directory) in building[0]

    # next start (new process: new cache object, same directory): loaded from the cache, no build
    again = resolve_engine(load_artifact(artifact_copy), GPU, TRT, ("fp16", "fp32"),
                           EngineCache(tmp_path / "engine-cache"), SMALL, build)
    assert again.source == "cache" and again.path == first.path and len(build.calls) == 1
    assert "using cached engine" in again.reason

    # fp16 cached also satisfies "fp16 or fp32"; an explicit fp32 request builds its own
    fp32 = resolve_engine(artifact, GPU, TRT, ("fp32",), cache, SMALL, build)
    assert fp32.source == "built" and fp32.path != first.path and build.calls[-1][1] == "fp32"
    # another profile, GPU or TensorRT version is another key: built anew
    for kwargs in ({"profile": Profile()}, {"gpu": GpuInfo("NVIDIA Test GPU", "9.0")}, {"trt_version": "10.10.0"}):
        args = {"gpu": GPU, "trt_version": TRT, "profile": SMALL, **kwargs}
        r = resolve_engine(artifact, args["gpu"], args["trt_version"], ("fp16",), cache,  # type: ignore[arg-type]
                           args["profile"], build)  # type: ignore[arg-type]
        assert r.source == "built"
    assert len(build.calls) == 5


def test_prebuilt_engine_in_the_manifest_wins(artifact_copy: Path, tmp_path: Path) -> None:
    engine = _add_prebuilt(artifact_copy, GPU, "fp32", b"prebuilt engine for the test GPU")
    _add_prebuilt(artifact_copy, GpuInfo("NVIDIA Other GPU", "8.9"), "fp16", b"prebuilt engine for another GPU")
    build, cache = RecordingBuilder(), EngineCache(tmp_path / "cache")
    r = resolve_engine(load_artifact(artifact_copy), GPU, TRT, ("fp16", "fp32"), cache, Profile(), build)
    assert r.source == "artifact" and r.path == engine and r.precision == "fp32" and r.profile == SMALL
    assert build.calls == [] and not cache.directory.exists()
    # not for this TensorRT version → not used; the log reason lists what the artifact has
    other = resolve_engine(load_artifact(artifact_copy), GPU, "10.10.0", ("fp16", "fp32"), cache, SMALL, build)
    assert other.source == "built"
    assert "NVIDIA Other GPU (sm 8.9) / TensorRT 10.9.0.34 / fp16" in other.reason
    # the prebuilt engine is sha256-checked before use
    engine.write_bytes(b"prebuilt engine for the test GPU, replaced")
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        resolve_engine(load_artifact(artifact_copy), GPU, TRT, ("fp32",), cache, SMALL, build)


def test_find_engine_precision_order(artifact_copy: Path) -> None:
    _add_prebuilt(artifact_copy, GPU, "fp32", b"a")
    _add_prebuilt(artifact_copy, GPU, "fp16", b"b")
    m = load_manifest(artifact_copy)
    assert find_engine(m, GPU, TRT, ("fp16", "fp32")).precision == "fp16"  # type: ignore[union-attr]
    assert find_engine(m, GPU, TRT, ("fp32",)).precision == "fp32"  # type: ignore[union-attr]
    assert find_engine(m, GpuInfo("NVIDIA L4", "8.9"), TRT, ("fp16", "fp32")) is None
    # same marketing name, different compute capability (e.g. two Jetson boards): not a match
    assert find_engine(m, GpuInfo(GPU.name, "8.7"), TRT, ("fp16", "fp32")) is None


def test_tampered_onnx_is_never_compiled(artifact_copy: Path, tmp_path: Path) -> None:
    onnx = artifact_copy / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    build = RecordingBuilder()
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        resolve_engine(load_artifact(artifact_copy), GPU, TRT, ("fp16",), EngineCache(tmp_path), SMALL, build)
    assert build.calls == []


def test_build_disabled_explains_what_to_do(edge_artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"building engines is disabled.*training\.export\.tensorrt"):
        resolve_engine(load_artifact(edge_artifact), GPU, TRT, ("fp16", "fp32"), EngineCache(tmp_path), SMALL, None)
    # a cached engine is still used with building disabled
    cache = EngineCache(tmp_path)
    resolve_engine(load_artifact(edge_artifact), GPU, TRT, ("fp32",), cache, SMALL, RecordingBuilder())
    r = resolve_engine(load_artifact(edge_artifact), GPU, TRT, ("fp16", "fp32"), cache, SMALL, None)
    assert r.source == "cache" and r.precision == "fp32"


def test_auto_on_cpu_builds_nothing(edge_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed: auto may rightly build an engine here")
    except ImportError:
        pass
    monkeypatch.setenv("PREPICM_ENGINE_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        assert create_backend("auto", edge_artifact).name == "onnxruntime"
    assert any("tensorrt not used" in r.getMessage() and "prepicm[tensorrt]" in r.getMessage()
               for r in caplog.records)
    assert not (tmp_path / "cache").exists()


# -- on a GPU with TensorRT: build on the edge, run, compare with ONNX Runtime ---------------------


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_edge_builds_caches_and_matches_onnxruntime(edge_artifact: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from shared.tensorrt_engine import supports_fp16_flag

    art = tmp_path / "art"
    shutil.copytree(edge_artifact, art)
    assert load_manifest(art).engines == []  # nothing prebuilt: the edge must build
    cache = tmp_path / "cache"
    ort_b = create_backend("onnxruntime", art, device="cpu")
    precisions = ["fp32", "fp16"] if supports_fp16_flag() else ["fp32"]
    for precision in precisions:
        with caplog.at_level(logging.INFO, logger="edge.backends"):
            trt_b = create_backend("tensorrt", art, precision=precision, cache_dir=cache, profile=SMALL)
        assert trt_b.describe()["engine_source"] == "built"
        assert any("building a " + precision in r.getMessage() for r in caplog.records)
        tol = 1e-3 if precision == "fp32" else 3e-2
        for shape in [(1, 3, 17, 13), (2, 3, 64, 96), (1, 3, 256, 256)]:
            x = np.random.default_rng(5).random(shape, dtype=np.float32)
            diff = np.abs(trt_b.run(x, 0.6) - ort_b.run(x, 0.6)).max()
            assert diff <= tol, f"{precision} {shape}: {diff}"
        again = create_backend("tensorrt", art, precision=precision, cache_dir=cache, profile=SMALL)
        assert again.describe()["engine_source"] == "cache"
        assert again.describe()["engine"] == trt_b.describe()["engine"]
    assert load_manifest(art).engines == []  # the edge never writes into the artifact
