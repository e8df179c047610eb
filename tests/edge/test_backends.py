from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.backends import (
    BACKENDS,
    InputError,
    MissingDependencyError,
    UntrainedArtifactError,
    create_backend,
)
from shared.manifest import (
    ArtifactMismatchError,
    ManifestInvalidError,
    ManifestMismatchError,
    OperatingPointError,
)


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _has_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return _has_cuda()


def test_registry_names() -> None:
    assert BACKENDS.names() == ["tensorrt", "onnxruntime", "torch", "auto"]


def test_auto_on_cpu_picks_onnxruntime_and_says_why(edge_artifact: Path, caplog: pytest.LogCaptureFixture) -> None:
    if _has_cuda():
        pytest.skip("a GPU is present: auto may rightly pick TensorRT or CUDA")
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        backend = create_backend("auto", edge_artifact)
    assert backend.name == "onnxruntime"
    assert backend.describe()["providers"] == ["CPUExecutionProvider"]
    messages = [r.getMessage() for r in caplog.records if r.name == "edge.backends"]
    assert any("tensorrt not used" in m for m in messages)
    picked = [m for m in messages if m.startswith("auto: picked onnxruntime (CPUExecutionProvider)")]
    assert picked and "no TensorRT engine or CUDA provider" in picked[0]
    assert any("UNTRAINED" in m for m in messages)


@pytest.mark.parametrize("size", [(1, 1), (8, 600), (17, 13), (33, 65), (64, 96)])
def test_onnxruntime_and_torch_agree(edge_artifact: Path, size: tuple[int, int]) -> None:
    ort_b = create_backend("onnxruntime", edge_artifact, device="cpu")
    torch_b = create_backend("torch", edge_artifact, device="cpu")
    x = np.random.default_rng(0).random((2, 3, *size), dtype=np.float32)
    cond = ort_b.conditioning_for("bpg", 34)
    a, b = ort_b.run(x, cond), torch_b.run(x, cond)
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.abs(a - b).max() <= 1e-4


def test_uint8_hwc_in_uint8_hwc_out(edge_artifact: Path) -> None:
    backend = create_backend("onnxruntime", edge_artifact)
    frame = np.random.default_rng(1).integers(0, 256, (31, 45, 3), dtype=np.uint8)
    out = backend.run(frame, backend.conditioning_for("jpeg", 60))
    assert out.shape == frame.shape and out.dtype == np.uint8
    ref = backend.run(frame.transpose(2, 0, 1)[None].astype(np.float32) / 255, backend.conditioning_for("jpeg", 60))
    assert np.abs(out.astype(float) - np.rint(ref[0].transpose(1, 2, 0) * 255)).max() <= 1


def test_conditioning_changes_backend_output(edge_artifact: Path) -> None:
    backend = create_backend("onnxruntime", edge_artifact)
    x = np.random.default_rng(2).random((1, 3, 32, 32), dtype=np.float32)
    assert np.abs(backend.run(x, 25 / 51) - backend.run(x, 44 / 51)).max() > 1e-4


def test_bad_inputs_are_rejected(edge_artifact: Path) -> None:
    backend = create_backend("onnxruntime", edge_artifact)
    with pytest.raises(InputError, match="pass cond"):
        backend.run(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(InputError, match="NCHW"):
        backend.run(np.zeros((1, 16, 16, 3), np.float64), 0.5)
    with pytest.raises(InputError, match="outside"):
        backend.run(np.zeros((1, 3, 16, 16), np.float32), 1.5)


def test_tampered_file_is_rejected(artifact_copy: Path) -> None:
    onnx_path = artifact_copy / "model.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        create_backend("onnxruntime", artifact_copy)
    (artifact_copy / "model.ts").unlink()
    with pytest.raises(ArtifactMismatchError, match=r"model\.ts .*missing"):
        create_backend("torch", artifact_copy)


def test_wrong_variant_is_rejected(edge_artifact: Path) -> None:
    with pytest.raises(ManifestMismatchError, match="'test_tiny', but 'paper_qa' was requested"):
        create_backend("onnxruntime", edge_artifact, variant="paper_qa")


def test_untrained_qp_and_codec_are_rejected(edge_artifact: Path) -> None:
    with pytest.raises(OperatingPointError, match=r"outside the trained QP range 25\.\.44"):
        create_backend("onnxruntime", edge_artifact, codec="bpg", quality=50)
    with pytest.raises(OperatingPointError, match="outside the trained QP range"):
        create_backend("onnxruntime", edge_artifact, codec="jpeg", quality=100)
    backend = create_backend("onnxruntime", edge_artifact, codec="bpg", quality=30)
    with pytest.raises(OperatingPointError):
        backend.conditioning_for("bpg", 10)


def test_require_trained_refuses_random_weights(edge_artifact: Path) -> None:
    with pytest.raises(UntrainedArtifactError, match="UNTRAINED"):
        create_backend("onnxruntime", edge_artifact, require_trained=True)


def test_manifest_input_names_must_match_the_model(artifact_copy: Path) -> None:
    path = artifact_copy / "manifest.json"
    data = json.loads(path.read_text())
    data["inputs"][1]["name"] = "qp"
    data["conditioning"]["input_name"] = "qp"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestMismatchError, match=r"takes inputs \['image', 'cond'\]"):
        create_backend("onnxruntime", artifact_copy)


def test_missing_or_broken_manifest(tmp_path: Path, artifact_copy: Path) -> None:
    with pytest.raises(ManifestInvalidError, match=r"no manifest\.json"):
        create_backend("onnxruntime", tmp_path)
    (artifact_copy / "manifest.json").write_text('{"variant": 3}')
    with pytest.raises(ManifestInvalidError, match="schema"):
        create_backend("onnxruntime", artifact_copy)


@pytest.mark.parametrize(("backend", "module", "extra"), [
    ("tensorrt", "tensorrt", "tensorrt"), ("onnxruntime", "onnxruntime", "edge"), ("torch", "torch", "torch"),
])
def test_missing_dependency_names_the_extra(edge_artifact: Path, monkeypatch: pytest.MonkeyPatch,
                                            backend: str, module: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import → ImportError, as if not installed
    with pytest.raises(MissingDependencyError, match=rf"pip install 'prepicm\[{extra}\]'"):
        create_backend(backend, edge_artifact)


def test_auto_falls_back_to_torch_without_onnxruntime(edge_artifact: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        backend = create_backend("auto", edge_artifact)
    assert backend.name == "torch"
    assert any("auto: picked torch" in r.getMessage() for r in caplog.records)


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs an NVIDIA GPU with CUDA")
def test_torch_cuda_fp16_close_to_cpu(edge_artifact: Path) -> None:
    cpu = create_backend("torch", edge_artifact, device="cpu")
    gpu = create_backend("torch", edge_artifact, device="cuda", fp16=True)
    x = np.random.default_rng(3).random((1, 3, 64, 80), dtype=np.float32)
    assert np.abs(cpu.run(x, 0.6) - gpu.run(x, 0.6)).max() < 2e-2


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(not _has_tensorrt(), reason="needs TensorRT and an NVIDIA GPU (pip install 'prepicm[tensorrt]')")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_onnxruntime(edge_artifact: Path, tmp_path: Path, precision: str,
                                      caplog: pytest.LogCaptureFixture) -> None:
    from training.export.tensorrt import Profile, build_engines

    art = tmp_path / "trt"
    shutil.copytree(edge_artifact, art)
    build_engines(art, (precision,), Profile(opt=(1, 3, 64, 96), max=(2, 3, 256, 256)))  # type: ignore[arg-type]
    trt_b = create_backend("tensorrt", art, precision=precision)
    ort_b = create_backend("onnxruntime", art, device="cpu")
    for shape in [(1, 3, 17, 13), (2, 3, 64, 96), (1, 3, 256, 256)]:
        x = np.random.default_rng(4).random(shape, dtype=np.float32)
        tol = 1e-3 if precision == "fp32" else 3e-2
        assert np.abs(trt_b.run(x, 0.6) - ort_b.run(x, 0.6)).max() <= tol
    with pytest.raises(InputError, match="profile"):
        trt_b.run(np.zeros((1, 3, 512, 512), np.float32), 0.6)
    assert trt_b.describe()["engine_source"] == "artifact"  # the prebuilt engine, no build on the edge
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        assert create_backend("auto", art).name == "tensorrt"
    assert any("auto: picked tensorrt" in r.getMessage() for r in caplog.records)
