"""One backend called from many threads at once (as the edge's thread pool does) gives, for every
call, exactly what a single-threaded call gives."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edge.backends import create_backend

THREADS = 8
CALLS = 16


def _inputs(backend) -> list[tuple[np.ndarray, float]]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    shapes = [(17, 23), (32, 48), (40, 40), (9, 64)]
    qps = [25, 31, 37, 44]
    return [(rng.integers(0, 256, (*shapes[i % 4], 3), dtype=np.uint8),
             backend.conditioning_for("bpg", qps[(i // 4) % 4])) for i in range(CALLS)]


def _hammer(backend, items: list[tuple[np.ndarray, float]]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    start = threading.Barrier(THREADS)

    def call(i: int) -> np.ndarray:
        if i < THREADS:
            start.wait()  # the first wave starts together
        x, cond = items[i]
        return backend.run(x, cond)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(call, range(len(items))))


@pytest.mark.parametrize("name", ["onnxruntime", "torch"])
def test_concurrent_calls_match_single_threaded(edge_artifact: Path, name: str) -> None:
    backend = create_backend(name, edge_artifact, device="cpu")
    items = _inputs(backend)
    reference = [backend.run(x, c) for x, c in items]
    assert len({r.tobytes() for r in reference}) == CALLS  # different inputs, different outputs
    got = _hammer(backend, items)
    for ref, out in zip(reference, got, strict=True):
        assert out.shape == ref.shape and np.array_equal(out, ref)


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_tensorrt_concurrent_calls_match_single_threaded(edge_artifact: Path, tmp_path: Path) -> None:
    """Threads share one execution context, stream and buffers: the backend serialises them and
    sets the CUDA device in each calling thread."""
    import shutil

    from training.export.tensorrt import Profile, build_engines

    art = tmp_path / "trt"
    shutil.copytree(edge_artifact, art)
    build_engines(art, ("fp32",), Profile(opt=(1, 3, 64, 96), max=(2, 3, 256, 256)))  # type: ignore[arg-type]
    backend = create_backend("tensorrt", art, precision="fp32")
    items = _inputs(backend)
    reference = [backend.run(x, c) for x, c in items]
    got = _hammer(backend, items)
    for ref, out in zip(reference, got, strict=True):
        assert np.array_equal(out, ref)


@pytest.mark.gpu
def test_torch_cuda_concurrent_calls_from_fresh_threads(edge_artifact: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    backend = create_backend("torch", edge_artifact, device="cuda")
    assert backend.describe()["device"] == f"cuda:{torch.cuda.current_device()}"
    items = _inputs(backend)
    reference = [backend.run(x, c) for x, c in items]
    got = _hammer(backend, items)
    for ref, out in zip(reference, got, strict=True):
        assert np.abs(out.astype(int) - ref).max() <= 1
