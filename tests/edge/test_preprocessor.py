"""An exported NPP as the evaluation harness's preprocessor (evaluation imports edge directly)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.preprocessor import NppPreprocessor, numerics
from evaluation.preprocessors import load_preprocessor, resolve_preprocessor_id
from evaluation.sweep import CodecSpec, SweepConfig, run_sweep
from shared.manifest import OperatingPointError
from shared.preprocess import apply_preprocessor


def test_an_exported_npp_folder_is_a_preprocessor(edge_artifact: Path, kodak_image: np.ndarray) -> None:
    pre = load_preprocessor(str(edge_artifact))
    assert isinstance(pre, NppPreprocessor)
    sha = json.loads((edge_artifact / "manifest.json").read_text())["onnx"]["sha256"]
    assert resolve_preprocessor_id(str(edge_artifact)) == f"npp-test_tiny-UNTRAINED-{sha[:12]}-ort-cpu"  # auto on CPU
    img = np.ascontiguousarray(kodak_image[:67, :93])
    low, high = apply_preprocessor(pre, img, "bpg", 25), apply_preprocessor(pre, img, "bpg", 44)
    assert low.shape == img.shape and low.dtype == np.uint8
    assert not np.array_equal(low, high)  # the QA layers see the operating point
    assert apply_preprocessor(pre, img, "jpeg", 50).shape == img.shape
    with pytest.raises(OperatingPointError, match="outside the trained QP range"):
        pre(img, "bpg", 10)


def test_numerics_tags() -> None:
    assert numerics({"backend": "tensorrt", "precision": "fp16"}) == "trt-fp16"
    assert numerics({"backend": "onnxruntime", "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}) \
        == "ort-cuda"
    assert numerics({"backend": "onnxruntime", "providers": ["CPUExecutionProvider"]}) == "ort-cpu"
    assert numerics({"backend": "torch", "device": "cuda:0", "fp16": True}) == "torch-cuda-fp16"


def test_a_sweep_scores_the_npp_beside_the_plain_codec(edge_artifact: Path, shared_dir: Path,
                                                      tmp_path: Path) -> None:
    from shared.tasks import get_task

    cfg = SweepConfig("imagenet_folder", str(shared_dir / "data" / "imagenet" / "val"), "efficientnet_lite0",
                      [CodecSpec("jpeg", [50])], out=str(tmp_path / "out"), limit=2, workers=1,
                      progress=False, cache_dir=str(tmp_path / "cache"),
                      preprocess=["none", str(edge_artifact)])
    res = run_sweep(cfg, model=get_task("efficientnet_lite0"))
    s = json.loads((tmp_path / "out" / "sweep.json").read_text())
    pres = sorted(p["preprocessing"] for p in s["points"])
    assert pres[0] == "none" and pres[1].startswith("npp-test_tiny-UNTRAINED-")
    plain, npp = sorted(s["points"], key=lambda p: p["preprocessing"] != "none")
    assert plain["bpp"] != npp["bpp"] and res.stats.images_encoded == 4
