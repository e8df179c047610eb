"""Preprocessor specs (registry name, module:function, artifact folder) and the encode cache keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.evaluation.cache import EncodeCache, content_hash, encode_key
from shared.evaluation.preprocess import (
    GaussianBlur,
    PreprocessorError,
    apply_preprocessor,
    load_preprocessor,
    preprocessor_id,
)


def make_blur(directory: Path) -> GaussianBlur:
    """An artifact loader as an exported NPP would name in its manifest."""
    cfg = json.loads((directory / "manifest.json").read_text())
    return GaussianBlur(cfg["sigma"])


def test_specs_resolve() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert load_preprocessor("none") is None and load_preprocessor(None) is None
    blur = load_preprocessor("gaussian_blur")
    assert blur is not None and preprocessor_id("gaussian_blur") == "gaussian_blur_s1"
    out = apply_preprocessor(blur, img, "jpeg", 50)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.std() < img.std()
    f = load_preprocessor(f"{__name__}:make_blur")
    assert f is make_blur
    with pytest.raises(PreprocessorError, match="cannot import module"):
        load_preprocessor("no_such_module_x:f")
    with pytest.raises(PreprocessorError, match="unknown preprocessor"):
        load_preprocessor("sharpen")


def test_artifact_directory(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"preprocessor_loader": f"{__name__}:make_blur",
                                                        "sigma": 2.0}))
    pre = load_preprocessor(str(tmp_path))
    assert isinstance(pre, GaussianBlur) and pre.sigma == 2.0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PreprocessorError, match=r"no manifest\.json"):
        load_preprocessor(str(empty))
    (empty / "manifest.json").write_text(json.dumps({"kind": "npp-onnx"}))
    with pytest.raises(PreprocessorError, match="registered loader"):
        load_preprocessor(str(empty))


def test_bad_preprocessor_output_is_refused() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(PreprocessorError, match="expected uint8"):
        apply_preprocessor(lambda x, c, q: x.astype(np.float32), img, "bpg", 30)


def test_cache_key_and_roundtrip(tmp_path: Path) -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    h = content_hash(img)
    assert h != content_hash(img + 1) and h != content_hash(np.zeros((8, 8, 3), np.uint8).reshape(16, 4, 3))
    k = encode_key(h, "jpeg", {"optimize": True}, 50, "none")
    variants = [encode_key(h, "webp", {"optimize": True}, 50, "none"),
                encode_key(h, "jpeg", {"optimize": False}, 50, "none"),
                encode_key(h, "jpeg", {"optimize": True}, 51, "none"),
                encode_key(h, "jpeg", {"optimize": True}, 50, "gaussian_blur_s1")]
    assert k not in variants and len(set(variants)) == 4
    cache = EncodeCache(tmp_path)
    assert cache.get("jpeg", k, ".jpg") is None
    cache.put("jpeg", k, ".jpg", b"\xff\xd8abc", {"psnr": 30.0})
    data, meta = cache.get("jpeg", k, ".jpg")  # type: ignore[misc]
    assert data == b"\xff\xd8abc" and meta["psnr"] == 30.0 and meta["bytes"] == 5
    # a truncated data file is a miss, not a wrong answer
    next(tmp_path.glob("jpeg/*/*.jpg")).write_bytes(b"\xff")
    assert cache.get("jpeg", k, ".jpg") is None
    assert EncodeCache(None).get("jpeg", k, ".jpg") is None


def test_yaml_config(tmp_path: Path) -> None:
    from shared.evaluation.sweep import SweepError, load_config

    p = tmp_path / "sweep.yaml"
    p.write_text(
        "dataset_kind: imagenet_folder\ndataset: ../shared/data/imagenet/val\ntask: efficientnet_lite0\n"
        "out: results/x\nlimit: 10\npreprocessing: [none, gaussian_blur]\n"
        "codecs:\n  - {name: bpg, qualities: [27, 37], options: {level: 5}}\n  - {name: jpeg, qualities: [20]}\n"
    )
    cfg = load_config(p)
    assert cfg.limit == 10 and cfg.preprocessing == ["none", "gaussian_blur"]
    assert [(c.name, c.qualities, c.options) for c in cfg.codecs] == [("bpg", [27, 37], {"level": 5}),
                                                                       ("jpeg", [20], {})]
    p.write_text("dataset_kind: x\ncodecs: [{name: bpg}]\n")
    with pytest.raises(SweepError, match="qualities"):
        load_config(p)
    with pytest.raises(SweepError, match="not found"):
        load_config(tmp_path / "missing.yaml")
