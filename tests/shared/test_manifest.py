"""The manifest schema and the checks a loader runs, on hand-written manifests over real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.manifest import (
    ArtifactMismatchError,
    ManifestInvalidError,
    ManifestMismatchError,
    NppManifest,
    OperatingPointError,
    describe_file,
    load_manifest,
    verify_artifacts,
    write_manifest,
)


def _manifest(directory: Path, **overrides: Any) -> NppManifest:
    (directory / "model.onnx").write_bytes(b"onnx bytes")
    (directory / "model.ts").write_bytes(b"torchscript bytes")
    data: dict[str, Any] = {
        "variant": "paper_qa",
        "quantization_adaptive": True,
        "parameters": 9_461_537,
        "inputs": [{"name": "image", "shape": ["N", 3, "H", "W"]},
                   {"name": "cond", "shape": ["N", 1], "layout": "N1", "color": "none"}],
        "outputs": [{"name": "x_bar", "shape": ["N", 3, "H", "W"]}],
        "conditioning": {"kind": "bpg_qp_normalised", "input_name": "cond"},
        "training": {"trained": False, "trained_codecs": ["bpg"], "serves_codecs": ["bpg", "jpeg"],
                     "qps": [28, 34, 40]},
        "onnx": describe_file(directory, "model.onnx").model_dump(),
        "onnx_opset": 17,
        "torchscript": describe_file(directory, "model.ts").model_dump(),
    }
    data.update(overrides)
    return NppManifest.model_validate(data)


def test_round_trip_and_hash_check(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    write_manifest(m, tmp_path)
    loaded = load_manifest(tmp_path)
    assert loaded == m
    verify_artifacts(loaded, tmp_path)
    assert loaded.inputs[0].layout == "NCHW" and loaded.inputs[0].value_range == (0.0, 1.0)
    assert loaded.inputs[0].color == "RGB" and loaded.padding_multiple == 16


def test_tampered_file_is_rejected(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes, swapped")
    with pytest.raises(ArtifactMismatchError, match=r"model\.onnx: sha256 .* differs"):
        verify_artifacts(m, tmp_path)
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(ArtifactMismatchError, match="missing"):
        verify_artifacts(m, tmp_path)


def test_wrong_variant_is_rejected(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    m.check_variant("paper_qa")
    m.check_variant(None)
    with pytest.raises(ManifestMismatchError, match="'paper_qa', but 'lite_qa' was requested"):
        m.check_variant("lite_qa")


def test_operating_points(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    assert m.check_operating_point("bpg", 31) == 31.0  # inside 28..40: QA interpolates
    with pytest.raises(OperatingPointError, match=r"outside the trained QP range 28\.\.40"):
        m.check_operating_point("bpg", 45)
    with pytest.raises(OperatingPointError, match="serves codecs"):
        m.check_operating_point("avif", 50)
    assert 28 <= m.check_operating_point("jpeg", 50) <= 40


def test_single_qp_network_accepts_only_its_qp(tmp_path: Path) -> None:
    m = _manifest(
        tmp_path, variant="paper", quantization_adaptive=False, parameters=9_422_235,
        inputs=[{"name": "image", "shape": ["N", 3, "H", "W"]}], conditioning={"kind": "none"},
        training={"trained": True, "run_id": "r1", "trained_codecs": ["bpg"], "serves_codecs": ["bpg"],
                  "qps": [34], "metrics": {"map": 0.31}},
    )
    assert m.check_operating_point("bpg", 34) == 34
    with pytest.raises(OperatingPointError, match=r"no QA layers and was trained only for QP \[34\]"):
        m.check_operating_point("bpg", 33)


@pytest.mark.parametrize(("override", "message"), [
    ({"conditioning": {"kind": "none"}}, "QA model needs a conditioning input"),
    ({"inputs": [{"name": "img", "shape": ["N", 3, "H", "W"]}]}, "first input must be 'image'"),
    ({"training": {"trained": True, "trained_codecs": ["bpg"], "serves_codecs": ["bpg"], "qps": [30]}},
     "must carry its training run_id"),
    ({"training": {"trained": False, "trained_codecs": ["bpg"], "serves_codecs": ["bpg"], "qps": []}},
     "at least one BPG QP"),
    ({"onnx_opset": 13}, "greater than or equal to 17"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
])
def test_schema_violations(tmp_path: Path, override: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _manifest(tmp_path, **override)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalidError, match=r"no manifest\.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestInvalidError, match="not readable JSON"):
        load_manifest(tmp_path)
    data = json.loads(_manifest(tmp_path).model_dump_json())
    data["padding_multiple"] = "sixteen"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestInvalidError, match="padding_multiple"):
        load_manifest(tmp_path)
