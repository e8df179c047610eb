"""Preprocessor specs (built-in name, module:function, artifact folder), preprocessor identity,
cache keys and the caches themselves, the YAML config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.cache import BitstreamCache, DecodedMetricsCache, OutputCache
from evaluation.config import SweepError, load_config
from evaluation.keys import bitstream_key, content_hash, decoded_key, outputs_key, point_id
from evaluation.preprocessors import load_preprocessor, resolve_preprocessor_id
from shared.preprocess import GaussianBlur, PreprocessorError, apply_preprocessor, preprocessor_id


def make_blur() -> GaussianBlur:
    return GaussianBlur(2.0)


make_blur.is_preprocessor_factory = True  # type: ignore[attr-defined]


def identity_filter(image: np.ndarray, codec: str, quality: int) -> np.ndarray:
    return image


def test_specs_resolve() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert load_preprocessor("none") is None and load_preprocessor(None) is None
    blur = load_preprocessor("gaussian_blur")
    assert blur is not None and resolve_preprocessor_id("gaussian_blur") == "gaussian_blur_s1"
    out = apply_preprocessor(blur, img, "jpeg", 50)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.std() < img.std()
    made = load_preprocessor(f"{__name__}:make_blur")
    assert isinstance(made, GaussianBlur) and made.sigma == 2.0
    assert load_preprocessor(f"{__name__}:identity_filter") is identity_filter
    with pytest.raises(PreprocessorError, match="cannot import module"):
        load_preprocessor("no_such_module_x:f")
    with pytest.raises(PreprocessorError, match="unknown preprocessor"):
        load_preprocessor("sharpen")


def test_a_function_is_identified_by_its_source() -> None:
    pid = preprocessor_id(identity_filter)
    assert pid.startswith(f"{__name__}.identity_filter-") and len(pid.rsplit("-", 1)[1]) == 12

    def identity_filter_2(image: np.ndarray, codec: str, quality: int) -> np.ndarray:
        return image

    def brighter(image: np.ndarray, codec: str, quality: int) -> np.ndarray:
        return image + 1

    # same body, other name → other id; other body → other hash
    assert preprocessor_id(identity_filter_2).rsplit("-", 1)[1] != preprocessor_id(brighter).rsplit("-", 1)[1]
    assert preprocessor_id(None) == "none" and preprocessor_id(GaussianBlur(1.5)) == "gaussian_blur_s1.5"


def test_artifact_directory_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(PreprocessorError, match=r"no manifest\.json"):
        load_preprocessor(str(tmp_path))


def test_bad_preprocessor_output_is_refused() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(PreprocessorError, match="expected uint8"):
        apply_preprocessor(lambda x, c, q: x.astype(np.float32), img, "bpg", 30)


def test_keys_change_with_exactly_what_determines_them() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    h = content_hash(img)
    assert h != content_hash(img + 1) and h != content_hash(np.zeros((8, 8, 3), np.uint8).reshape(16, 4, 3))
    k = bitstream_key(h, "jpeg", {"optimize": True}, 50, "none")
    variants = [bitstream_key(h, "webp", {"optimize": True}, 50, "none"),
                bitstream_key(h, "jpeg", {"optimize": False}, 50, "none"),
                bitstream_key(h, "jpeg", {"optimize": True, "libjpeg": "3.1"}, 50, "none"),
                bitstream_key(h, "jpeg", {"optimize": True}, 51, "none"),
                bitstream_key(h, "jpeg", {"optimize": True}, 50, "gaussian_blur_s1")]
    assert k not in variants and len(set(variants)) == 5
    d = decoded_key(k, "jpeg-decoder-1")
    assert d != decoded_key(k, "jpeg-decoder-2") and outputs_key(d, "a") != outputs_key(d, "b")


def test_point_ids_stay_distinct_after_truncation() -> None:
    long_a = "npp-" + "x" * 60 + "-ort-cpu"
    long_b = "npp-" + "x" * 60 + "-trt-fp16"
    a, b = (point_id("bpg", {}, {"level": 8}, p, 32) for p in (long_a, long_b))
    assert a != b and a.startswith("bpg-npp-xxx") and a.split("-q32-")[0] == b.split("-q32-")[0]
    assert point_id("bpg", {}, {"level": 8}, "none", 32) != point_id("bpg", {"level": 5}, {"level": 5}, "none", 32)


def test_caches_roundtrip(tmp_path: Path) -> None:
    k = "ab" + "0" * 62
    bits = BitstreamCache(tmp_path)
    assert bits.get("jpeg", k, ".jpg") is None
    bits.put("jpeg", k, ".jpg", b"\xff\xd8abc", {"quality": 50})
    assert bits.get("jpeg", k, ".jpg") == b"\xff\xd8abc"
    next(tmp_path.glob("bitstreams/jpeg/*/*.jpg")).write_bytes(b"\xff")  # truncated: a miss, not a wrong answer
    assert bits.get("jpeg", k, ".jpg") is None
    metrics = DecodedMetricsCache(tmp_path)
    metrics.put(k, {"psnr": 30.0})
    assert metrics.get(k) == {"psnr": 30.0}
    outs = OutputCache(tmp_path)
    outs.put(k, {"probs": [1.0]})
    assert outs.has(k) and outs.get(k) == {"probs": [1.0]}
    assert BitstreamCache(None).get("jpeg", k, ".jpg") is None and not OutputCache(None).has(k)


def test_yaml_config(tmp_path: Path) -> None:
    p = tmp_path / "sweep.yaml"
    p.write_text(
        "dataset_kind: imagenet_folder\ndataset: ../shared/data/imagenet/val\ntask: efficientnet_lite0\n"
        "out: results/x\nlimit: 10\npreprocess: [none, gaussian_blur]\n"
        "codecs:\n  - {name: bpg, qualities: [27, 37], options: {level: 5}}\n  - {name: jpeg, qualities: [20]}\n"
    )
    cfg = load_config(p)
    assert cfg.limit == 10 and cfg.preprocess == ["none", "gaussian_blur"]
    assert [(c.name, c.qualities, c.options) for c in cfg.codecs] == [("bpg", [27, 37], {"level": 5}),
                                                                       ("jpeg", [20], {})]
    p.write_text("dataset_kind: x\ncodecs: [{name: bpg}]\n")
    with pytest.raises(SweepError, match="qualities"):
        load_config(p)
    with pytest.raises(SweepError, match="not found"):
        load_config(tmp_path / "missing.yaml")
