"""The committed NPP: it is trained, small, intact, the edge's default, and every backend that
serves it reproduces the PyTorch (TorchScript) output. Skipped, with the reason shown, while the
project ships none (a trained NPP is committed only once it beats the plain codec on ImageNet val)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge.backends.registry import create_backend
from edge.core.config import EdgeSettings
from evaluation.preprocessors import load_preprocessor
from shared.conditioning import conditioning_value
from shared.manifest import load_manifest, verify_artifacts
from shared.paths import shipped_npp_dir
from training.export.artifact import kodak_images

MAX_BYTES = 25 * 1024 * 1024

pytestmark = pytest.mark.skipif(not (shipped_npp_dir() / "manifest.json").is_file(),
                                reason=f"no NPP is shipped yet ({shipped_npp_dir()} is absent)")


def test_shipped_artifact_is_trained_small_and_intact() -> None:
    d = shipped_npp_dir()
    m = load_manifest(d)
    verify_artifacts(m, d)  # every file's sha256 matches the manifest
    assert m.training.trained and m.training.run_id
    assert m.quantization_adaptive and min(m.training.qps) <= 25 and max(m.training.qps) >= 44
    size = sum(p.stat().st_size for p in d.iterdir() if p.name.endswith(".onnx"))
    assert 0 < size <= MAX_BYTES
    assert m.parity["onnx_max_abs_diff_kodak"] <= 1e-4


def test_edge_and_eval_load_it_by_default() -> None:
    assert shipped_npp_dir() == EdgeSettings(DEV=True).NPP_ARTIFACT
    assert load_preprocessor("shipped") is not None


def test_backends_reproduce_the_pytorch_output() -> None:
    d = shipped_npp_dir()
    scripted = torch.jit.load(str(d / "model.ts"))
    cond = conditioning_value("bpg", 34)
    image = kodak_images(1, crop=128)[0]  # (1, 3, H, W) float32 in [0, 1]
    with torch.no_grad():
        ref = scripted(torch.from_numpy(image), torch.full((1, 1), cond))["x_bar"].numpy()
    for name in ("onnxruntime", "torch"):
        got = create_backend(name, d, codec="bpg", quality=34).run(image, cond)
        assert np.abs(got - ref).max() <= 1e-4, name
    # the trained filter changes the picture, but gently (it must not be an identity or a wreck)
    diff = np.abs(ref - image).mean()
    assert 1e-4 < diff < 0.05
