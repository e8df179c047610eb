"""A tiny real sweep: structure of the outputs, the encode cache, resuming after an interruption."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluation.sweep import CodecSpec, SweepConfig, SweepError, run_sweep
from shared.codecs.pillow_codecs import JpegCodec


def _config(root: Path, out: Path, cache: Path, **kw: Any) -> SweepConfig:
    base: dict[str, Any] = dict(limit=3, cache_dir=str(cache), workers=1, progress=False, batch_size=2)
    base.update(kw)
    return SweepConfig("imagenet_folder", str(root), "efficientnet_lite0", [CodecSpec("jpeg", [15, 60])],
                       out=str(out), **base)


@pytest.fixture
def count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = JpegCodec.encode

    def counting(self: JpegCodec, image: np.ndarray, quality: int | None = None) -> bytes:
        calls.append(int(quality or 0))
        return original(self, image, quality)

    monkeypatch.setattr(JpegCodec, "encode", counting)
    return calls


def test_tiny_sweep_structure_and_cache(tmp_path: Path, imagenet_val: Path, classifier: Any,
                                        count_encodes: list[int]) -> None:
    res = run_sweep(_config(imagenet_val, tmp_path / "a", tmp_path / "cache"), model=classifier)
    assert len(count_encodes) == 6 and res.stats.images_encoded == 6 and res.stats.cache_hits == 0
    assert res.stats.inferences == 3 + 6  # pristine images + decoded images
    s = json.loads((tmp_path / "a" / "sweep.json").read_text())
    assert s["dataset"]["n_images"] == 3 and s["task"]["kind"] == "classification"
    assert s["metrics"] == ["bpp", "top1", "top5", "ce", "kl", "agreement", "psnr", "msssim"]
    assert [p["quality"] for p in s["points"]] == [15, 60]
    lo, hi = s["points"]
    assert 0 < lo["bpp"] < hi["bpp"] and lo["psnr"] < hi["psnr"] and lo["msssim"] < hi["msssim"]
    assert s["pristine"]["kl"] == 0.0 and s["pristine"]["agreement"] == 1.0
    for p in s["points"]:
        assert set(p) >= {"top1", "top5", "ce", "kl", "agreement", "psnr", "msssim", "bpp"}
        assert 0 <= p["top1"] <= p["top5"] <= 1 and p["kl"] >= 0
        rec = json.loads((tmp_path / "a" / "points" / f"{p['id']}.json").read_text())
        imgs = rec["images"]
        assert len(imgs) == 3
        # bpp is real file bytes × 8 over original pixels
        assert p["bpp"] == pytest.approx(sum(i["bits"] for i in imgs) / sum(i["pixels"] for i in imgs))
        assert all(i["bits"] % 8 == 0 and i["pixels"] == 227 * 227 for i in imgs)
        assert p["top1"] == pytest.approx(np.mean([i["correct1"] for i in imgs]))
        assert p["ce"] == pytest.approx(np.mean([i["ce"] for i in imgs]))
        assert {"pred", "kl", "agree", "correct1", "correct5", "ce", "psnr", "msssim", "id"} <= set(imgs[0])
    # Same sweep into a new folder: everything comes from the cache, nothing is encoded or inferred.
    count_encodes.clear()
    res2 = run_sweep(_config(imagenet_val, tmp_path / "b", tmp_path / "cache"), model=classifier)
    assert count_encodes == [] and res2.stats.images_encoded == 0 and res2.stats.cache_hits == 6
    assert res2.stats.inferences == 0
    s2 = json.loads((tmp_path / "b" / "sweep.json").read_text())
    for p1, p2 in zip(s["points"], s2["points"], strict=True):
        for k in ("bpp", "psnr", "msssim", "top1", "ce", "kl"):
            assert p1[k] == p2[k]


def test_results_do_not_depend_on_where_the_weights_live(tmp_path: Path, imagenet_val: Path,
                                                         classifier: Any) -> None:
    from shared.tasks import get_task

    moved = tmp_path / "elsewhere" / classifier.weights_path.name
    moved.parent.mkdir()
    shutil.copyfile(classifier.weights_path, moved)
    other = get_task("efficientnet_lite0", weights=moved)
    assert other.weights_identity == classifier.weights_identity
    assert other.weights_identity.startswith("sha256:") and len(other.weights_identity) == 7 + 64
    run_sweep(_config(imagenet_val, tmp_path / "a", tmp_path / "cache", limit=2), model=classifier)
    res = run_sweep(_config(imagenet_val, tmp_path / "b", tmp_path / "cache", limit=2), model=other)
    assert res.stats.inferences == 0  # cached outputs are keyed by the weights' bytes, not their path
    text = (tmp_path / "b" / "sweep.json").read_text()
    assert str(moved.parent) not in text and str(classifier.weights_path.parent) not in text
    assert json.loads(text)["task"]["weights"] == moved.name


def test_interrupted_sweep_resumes(tmp_path: Path, imagenet_val: Path, classifier: Any,
                                   count_encodes: list[int]) -> None:
    seen: list[str] = []

    def stop_after_first(point: dict[str, Any]) -> None:
        seen.append(point["id"])
        raise KeyboardInterrupt

    cfg = _config(imagenet_val, tmp_path / "out", tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, model=classifier, on_point=stop_after_first)
    first = tmp_path / "out" / "points" / f"{seen[0]}.json"
    assert first.is_file() and len(list((tmp_path / "out" / "points").glob("*.json"))) == 1
    mtime = first.stat().st_mtime_ns
    count_encodes.clear()
    res = run_sweep(cfg, model=classifier)
    assert res.stats.points_resumed == 1 and res.stats.points_computed == 1
    assert count_encodes == [60, 60, 60]  # only the unfinished point is encoded
    assert first.stat().st_mtime_ns == mtime
    assert len(json.loads((tmp_path / "out" / "sweep.json").read_text())["points"]) == 2


def test_process_pool_and_preprocessing(tmp_path: Path, imagenet_val: Path, classifier: Any) -> None:
    cfg = _config(imagenet_val, tmp_path / "out", tmp_path / "cache", workers=2,
                  preprocess=["none", "gaussian_blur"])
    res = run_sweep(cfg, model=classifier)
    pts = res.summary["points"]
    assert [p["preprocessing"] for p in pts] == ["none", "none", "gaussian_blur_s1", "gaussian_blur_s1"]
    plain, blurred = pts[1], pts[3]  # quality 60, without and with the blur
    assert blurred["bpp"] < plain["bpp"]  # blur removes texture the codec would pay for
    assert res.stats.images_encoded == 12
    assert len({p["id"] for p in pts}) == 4


def test_bad_config_is_reported(tmp_path: Path, imagenet_val: Path, classifier: Any) -> None:
    cfg = _config(imagenet_val, tmp_path / "o", tmp_path / "c")
    cfg.codecs = [CodecSpec("jpeg", [15, 15])]
    with pytest.raises(SweepError, match="twice"):
        run_sweep(cfg, model=classifier)
    with pytest.raises(SweepError, match="unknown sweep config key"):
        SweepConfig.from_dict({"dataset_kind": "x", "dataset": "y", "task": "t", "out": "o", "codecz": []})
