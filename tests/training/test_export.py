from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from shared.manifest import load_manifest, verify_artifacts
from training.export import CheckpointError, ExportOptions, export_artifact
from training.export.__main__ import main as export_cli
from training.export.artifact import kodak_images
from training.npp import build_npp


def _ort(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_valid_artifact(tiny_artifact: Path) -> None:
    m = load_manifest(tiny_artifact)
    verify_artifacts(m, tiny_artifact)
    assert m.variant == "test_tiny" and m.quantization_adaptive
    assert m.input_names() == ["image", "cond"] and m.output_names() == ["x_bar"]
    assert m.training.trained is False and "UNTRAINED" in m.training.note
    assert m.training.qps == [25, 28, 29, 31, 34, 37, 40, 44]
    assert m.onnx_opset >= 17 and m.padding_multiple == 16
    assert m.parity["onnx_max_abs_diff_kodak"] <= 1e-4
    model = onnx.load(str(tiny_artifact / "model.onnx"))
    onnx.checker.check_model(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]


@pytest.mark.parametrize("shape", [(1, 3, 17, 13), (3, 3, 33, 65), (1, 3, 16, 600), (2, 3, 96, 128)])
def test_onnx_matches_pytorch_on_random_sizes(tiny_artifact: Path, shape: tuple[int, ...]) -> None:
    """Dynamic N/H/W: one exported graph serves every size (the trace used 40×56)."""
    scripted = torch.jit.load(str(tiny_artifact / "model.ts"))
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    cond = np.full((shape[0], 1), 31 / 51, dtype=np.float32)
    got = _ort(tiny_artifact / "model.onnx").run(["x_bar"], {"image": x, "cond": cond})[0]
    with torch.no_grad():
        ref = scripted(torch.from_numpy(x), torch.from_numpy(cond))["x_bar"].numpy()
    assert got.shape == shape
    assert np.abs(got - ref).max() <= 1e-4


def test_onnx_matches_pytorch_on_real_kodak(tiny_artifact: Path) -> None:
    scripted = torch.jit.load(str(tiny_artifact / "model.ts"))
    session = _ort(tiny_artifact / "model.onnx")
    for image in kodak_images(2, crop=160):
        cond = np.full((1, 1), 0.7, dtype=np.float32)
        got = session.run(["x_bar"], {"image": image, "cond": cond})[0]
        with torch.no_grad():
            ref = scripted(torch.from_numpy(image), torch.from_numpy(cond))["x_bar"].numpy()
        assert np.abs(got - ref).max() <= 1e-4


def test_paper_variant_exports_with_parity(tmp_path: Path) -> None:
    m = export_artifact("paper", tmp_path, options=ExportOptions(parity_kodak=1, parity_kodak_crop=64))
    assert m.parameters == 9_422_235 and not m.quantization_adaptive
    assert m.input_names() == ["image"] and m.conditioning.kind == "none"
    assert m.training.qps == [29]
    assert max(m.parity.values()) <= 1e-4
    x = np.random.default_rng(2).random((1, 3, 33, 47), dtype=np.float32)
    got = _ort(tmp_path / "model.onnx").run(["x_bar"], {"image": x})[0]
    with torch.no_grad():
        ref = torch.jit.load(str(tmp_path / "model.ts"))(torch.from_numpy(x), None)["x_bar"].numpy()
    assert np.abs(got - ref).max() <= 1e-4


def test_checkpoint_round_trip_records_provenance(tmp_path: Path) -> None:
    torch.manual_seed(3)
    trained = build_npp("test_tiny")
    for p in trained.parameters():  # stand-in for training: weights differ from a fresh init
        p.data.add_(0.01)
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"state_dict": trained.state_dict(), "variant": "test_tiny", "run_id": "run-42",
                "metrics": {"bd_rate_fcos": -12.5}, "qps": [28, 34, 40]}, ckpt)
    out = tmp_path / "art"
    m = export_artifact("test_tiny", out, ckpt, ExportOptions(parity_kodak=0))
    assert m.training.trained and m.training.run_id == "run-42"
    assert m.training.metrics == {"bd_rate_fcos": -12.5} and m.training.qps == [28, 34, 40]
    assert m.training.checkpoint_sha256 and m.training.note == ""
    x = torch.rand(1, 3, 20, 20)
    c = torch.tensor([[0.6]])
    with torch.no_grad():
        ref = trained.eval()(x, c)["x_bar"].numpy()
    got = _ort(out / "model.onnx").run(["x_bar"], {"image": x.numpy(), "cond": c.numpy()})[0]
    assert np.abs(got - ref).max() <= 1e-4


def test_checkpoint_of_another_variant_is_rejected(tmp_path: Path) -> None:
    ckpt = tmp_path / "lite.pt"
    torch.save({"state_dict": build_npp("test_tiny").state_dict(), "variant": "lite_qa"}, ckpt)
    with pytest.raises(CheckpointError, match="lite_qa"):
        export_artifact("test_tiny", tmp_path / "a", ckpt, ExportOptions(parity_kodak=0))
    torch.save(build_npp("test_tiny").state_dict(), ckpt)  # raw state dict, wrong shapes
    with pytest.raises(CheckpointError, match="does not fit"):
        export_artifact("paper_qa", tmp_path / "b", ckpt, ExportOptions(parity_kodak=0))


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert export_cli(["--variant", "test_tiny", "--out", str(out), "--parity-images", "0"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model.ts", "manifest.json"}
    assert json.loads((out / "manifest.json").read_text())["variant"] == "test_tiny"
    assert "UNTRAINED" in capsys.readouterr().out
    missing = tmp_path / "nope.pt"
    assert export_cli(["--variant", "test_tiny", "--out", str(out), "--checkpoint", str(missing)]) == 1
    assert "nope.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_cli(["--variant", "no_such_variant", "--out", str(out)])


def test_tensorrt_builder_names_the_extra_when_missing(tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from training.export.errors import TensorRTUnavailableError
    from training.export.tensorrt import build_engines

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt → ImportError
    with pytest.raises(TensorRTUnavailableError, match=r"pip install 'prepicm\[tensorrt\]'"):
        build_engines(tiny_artifact)
    assert load_manifest(tiny_artifact).engines == []  # nothing half-recorded


def test_engine_paths_inside_the_artifact_use_the_shared_key() -> None:
    from shared.tensorrt_engine import EngineKey, Profile
    from training.export.tensorrt import engine_relpath

    key = EngineKey("NVIDIA H200", "9.0", "10.9.0", "fp16", Profile(), "ab" * 32)
    rel = engine_relpath(key)
    assert rel == f"engines/{key.filename()}"
    assert rel.startswith("engines/nvidia-h200-sm90-trt10.9.0-fp16-") and rel.endswith(".engine")
    assert engine_relpath(EngineKey("NVIDIA H200", "9.0", "10.9.0", "fp16", Profile(max=(1, 3, 720, 1280)),
                                    "ab" * 32)) != rel


def test_tensorrt_cli_options(tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from training.export.tensorrt import main as trt_cli

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert trt_cli(["--artifact", str(tiny_artifact), "--precision", "fp32", "--max", "2x256x256",
                    "--opt", "1x64x64"]) == 1
    assert "prepicm[tensorrt]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        trt_cli(["--artifact", str(tiny_artifact), "--max", "2x256"])
    assert trt_cli(["--artifact", str(tiny_artifact), "--max", "1x8x8"]) == 1  # max below opt
    assert "min ≤ opt ≤ max" in capsys.readouterr().err


def test_export_cli_prebuild_without_tensorrt_keeps_the_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    out = tmp_path / "cli-trt"
    assert export_cli(["--variant", "test_tiny", "--out", str(out), "--parity-images", "0",
                       "--tensorrt", "fp16"]) == 1
    err = capsys.readouterr().err
    assert "TensorRT engines not built" in err and "prepicm[tensorrt]" in err
    m = load_manifest(out)  # the ONNX / TorchScript artifact is complete and valid
    verify_artifacts(m, out)
    assert m.engines == []


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_prebuilt_engines_are_listed_and_reused(tiny_artifact: Path, tmp_path: Path) -> None:
    import shutil

    from shared.tensorrt_engine import Profile, supports_fp16_flag
    from training.export.tensorrt import build_engines

    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    precisions = ("fp16", "fp32") if supports_fp16_flag() else ("fp32",)
    profile = Profile(opt=(1, 3, 64, 64), max=(1, 3, 128, 128))
    built = build_engines(art, precisions, profile)  # type: ignore[arg-type]
    m = load_manifest(art)
    verify_artifacts(m, art)
    assert [e.precision for e in m.engines] == list(precisions) and m.engines == built
    assert all(e.profile_max == (1, 3, 128, 128) for e in m.engines)
    mtimes = [(art / e.path).stat().st_mtime_ns for e in built]
    again = build_engines(art, precisions, profile)  # type: ignore[arg-type]
    assert again == built and [(art / e.path).stat().st_mtime_ns for e in again] == mtimes
