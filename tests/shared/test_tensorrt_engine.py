"""shared.tensorrt_engine: cache key, engine cache (pure Python, on fake engine bytes), missing
TensorRT errors; the real build runs only where TensorRT and a GPU exist."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared import tensorrt_engine as te
from shared.tensorrt_engine import EngineCache, EngineKey, Profile

SHA = "ab" * 32


def _key(**changes: object) -> EngineKey:
    base = EngineKey(gpu="NVIDIA H200", compute_capability="9.0", tensorrt_version="10.9.0.34",
                     precision="fp16", profile=Profile(), onnx_sha256=SHA)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# -- key -------------------------------------------------------------------------------------------


def test_key_is_stable_and_readable() -> None:
    a, b = _key(), _key(profile=Profile((1, 3, 16, 16), (1, 3, 512, 768), (4, 3, 1088, 1920)))
    assert a == b and a.digest() == b.digest() and a.filename() == b.filename()
    # Golden: the digest must not drift between releases or processes, or every edge in a fleet
    # would rebuild its engine after an upgrade that changed nothing about the engine.
    assert a.filename() == "nvidia-h200-sm90-trt10.9.0.34-fp16-a91b4d8dceb89291.engine"
    assert a.digest() == "a91b4d8dceb89291d189fa10eee0594c8a718d01a33ee76a4cd805ad07a369cd"


# (ids avoid the bare word "gpu": tests/conftest.py would read it as the gpu marker and skip)
CHANGES: dict[str, dict[str, object]] = {
    "gpu_model": {"gpu": "NVIDIA L4"},
    "compute_capability": {"compute_capability": "8.9"},
    "tensorrt_version": {"tensorrt_version": "10.9.0.35"},
    "precision": {"precision": "fp32"},
    "profile_min": {"profile": Profile(min=(1, 3, 32, 32))},
    "profile_opt": {"profile": Profile(opt=(1, 3, 480, 640))},
    "profile_max": {"profile": Profile(max=(2, 3, 1088, 1920))},
    "onnx_sha256": {"onnx_sha256": "ac" * 32},
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_key_changes_when_any_input_changes(field: str) -> None:
    base, changed = _key(), _key(**CHANGES[field])
    assert changed.digest() != base.digest()
    assert changed.filename() != base.filename()


def test_all_key_variants_are_distinct() -> None:
    digests = {_key(**c).digest() for c in CHANGES.values()} | {_key().digest()}
    assert len(digests) == len(CHANGES) + 1


def test_key_and_profile_validation() -> None:
    with pytest.raises(ValueError, match="precision"):
        _key(precision="int8")
    with pytest.raises(ValueError, match="onnx_sha256"):
        _key(onnx_sha256="abc")
    with pytest.raises(ValueError, match="min ≤ opt ≤ max"):
        Profile(min=(1, 3, 600, 600))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        Profile(max=(4, 1, 1088, 1920))
    p = Profile(opt=(1, 3, 64, 64), max=(2, 3, 256, 256))
    assert p.covers((1, 3, 16, 16)) and p.covers((2, 3, 256, 17))
    assert not p.covers((3, 3, 64, 64)) and not p.covers((1, 3, 257, 64)) and not p.covers((1, 3, 8, 64))


def test_weird_gpu_names_make_safe_filenames() -> None:
    name = _key(gpu="NVIDIA GeForce RTX 4090 / (laptop)\x00").filename()
    assert "/" not in name and " " not in name and name.startswith("nvidia-geforce-rtx-4090-laptop-sm90-")


# -- cache directory ------------------------------------------------------------------------------


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env_runtime: None) -> None:
    monkeypatch.delenv(te.ENGINE_CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert te.default_cache_dir() == tmp_path / "home" / ".cache" / "prepicm" / "engines"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert te.default_cache_dir() == tmp_path / "xdg" / "prepicm" / "engines"
    monkeypatch.setenv(te.ENGINE_CACHE_ENV, str(tmp_path / "explicit"))
    assert te.default_cache_dir() == tmp_path / "explicit"
    assert EngineCache().directory == tmp_path / "explicit"


# -- cache lookup / store on fake engine bytes ----------------------------------------------------


def test_store_then_lookup_round_trip(tmp_path: Path) -> None:
    cache, key = EngineCache(tmp_path / "engines"), _key()
    miss = cache.lookup(key)
    assert not miss.hit and "no cached engine" in miss.reason
    payload = b"fake serialized engine \x00\x01" * 100
    path = cache.store(key, payload)
    assert path == tmp_path / "engines" / key.filename() and path.read_bytes() == payload
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["key"] == key.fields() and meta["size_bytes"] == len(payload)
    hit = EngineCache(tmp_path / "engines").lookup(key)  # a fresh process sees it too
    assert hit.hit and hit.path == path
    # other keys do not see it
    assert not cache.lookup(_key(precision="fp32")).hit
    assert not cache.lookup(_key(tensorrt_version="10.10.0")).hit
    # no temporary files left behind by the atomic writes
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == sorted(
        [key.filename(), path.with_suffix(".json").name])


def test_corrupted_or_foreign_entries_are_misses(tmp_path: Path) -> None:
    cache, key = EngineCache(tmp_path), _key()
    path = cache.store(key, b"engine-bytes")
    path.write_bytes(b"engine-byteZ")
    found = cache.lookup(key)
    assert not found.hit and "corrupted" in found.reason
    cache.store(key, b"engine-bytes")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["key"]["tensorrt_version"] = "9.0"
    meta_path.write_text(json.dumps(meta))
    found = cache.lookup(key)
    assert not found.hit and "different key" in found.reason
    meta_path.unlink()
    found = cache.lookup(key)
    assert not found.hit and "no readable" in found.reason
    cache.store(key, b"engine-bytes")
    cache.evict(key)
    assert not path.exists() and not meta_path.exists()
    with pytest.raises(te.EngineCacheError, match="empty"):
        cache.store(key, b"")


def test_get_or_build_builds_once_then_reuses(tmp_path: Path) -> None:
    calls: list[str] = []
    misses: list[str] = []

    def build() -> bytes:
        calls.append("build")
        return b"engine v1"

    cache, key = EngineCache(tmp_path), _key()
    path, lookup = cache.get_or_build(key, build, lambda found: misses.append(found.reason))
    assert not lookup.hit and calls == ["build"] and path.read_bytes() == b"engine v1"
    assert misses and "no cached engine" in misses[0]
    path2, lookup2 = cache.get_or_build(key, build)
    assert lookup2.hit and path2 == path and calls == ["build"]
    path.write_bytes(b"garbage")  # corruption → rebuilt, not loaded
    _, lookup3 = cache.get_or_build(key, build)
    assert not lookup3.hit and "corrupted" in lookup3.reason and calls == ["build", "build"]
    assert path.read_bytes() == b"engine v1"


def test_concurrent_starts_build_once(tmp_path: Path) -> None:
    """Edge workers starting together: the per-key file lock makes one build, the rest reuse it."""
    calls: list[int] = []

    def slow_build() -> bytes:
        calls.append(1)
        time.sleep(0.2)
        return b"engine"

    results: list[bool] = []
    key = _key()

    def worker() -> None:
        _, lookup = EngineCache(tmp_path).get_or_build(key, slow_build)
        results.append(lookup.hit)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(results) == [False, True, True, True]


def test_unwritable_cache_dir_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = EngineCache(blocker / "engines")
    with pytest.raises(te.EngineCacheError, match=te.ENGINE_CACHE_ENV):
        cache.get_or_build(_key(), lambda: b"engine")
    with pytest.raises(te.EngineCacheError, match="cannot write"):
        cache.store(_key(), b"engine")


# -- missing TensorRT / CUDA ----------------------------------------------------------------------


def test_missing_tensorrt_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt → ImportError
    with pytest.raises(te.TensorRTUnavailableError, match=r"pip install 'prepicm\[tensorrt\]'") as info:
        te.import_tensorrt()
    assert info.value.package == "tensorrt"
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    with pytest.raises(te.TensorRTUnavailableError, match=r"prepicm\[tensorrt\]"):
        te.build_serialized_engine(onnx, "fp16", Profile())
    with pytest.raises(te.TensorRTUnavailableError, match=r"prepicm\[tensorrt\]"):
        te.deserialize_engine(b"engine")
    with pytest.raises(te.TensorRTUnavailableError, match=r"prepicm\[tensorrt\]"):
        te.engine_key(SHA, "fp16", Profile())


def test_missing_cuda_python_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(te.TensorRTUnavailableError, match=r"cuda-python.*prepicm\[tensorrt\]") as info:
        te.detect_gpu()
    assert info.value.package == "cuda-python"


def test_fp16_needs_the_builder_flag() -> None:
    """TensorRT 11 removed BuilderFlag.FP16: fp16 is then refused up front, not mid-build."""
    assert te.supports_fp16_flag(SimpleNamespace(BuilderFlag=SimpleNamespace(FP16=1, FP32=0)))
    assert not te.supports_fp16_flag(SimpleNamespace(BuilderFlag=SimpleNamespace()))


# -- real build (GPU + TensorRT only) -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.export import ExportOptions, export_artifact

    out = tmp_path_factory.mktemp("trt-npp-test_tiny")
    export_artifact("test_tiny", out, options=ExportOptions(parity_kodak=0))
    return out / "model.onnx"


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_and_deserialize_on_this_gpu(tiny_onnx: Path, tmp_path: Path, precision: te.Precision) -> None:
    if precision == "fp16" and not te.supports_fp16_flag():
        pytest.skip("this TensorRT has no BuilderFlag.FP16")
    from shared.manifest import sha256_file

    profile = Profile(max=(2, 3, 128, 128), opt=(1, 3, 64, 64))
    key = te.engine_key(sha256_file(tiny_onnx), precision, profile)
    assert key.gpu and key.compute_capability.count(".") == 1
    path, lookup = EngineCache(tmp_path).get_or_build(
        key, lambda: te.build_serialized_engine(tiny_onnx, precision, profile, workspace_gib=1.0))
    assert not lookup.hit and path.stat().st_size > 0
    loaded = te.deserialize_engine(path.read_bytes(), path)
    names = {loaded.engine.get_tensor_name(i) for i in range(loaded.engine.num_io_tensors)}
    assert names == {"image", "cond", "x_bar"}
    assert EngineCache(tmp_path).lookup(key).hit
