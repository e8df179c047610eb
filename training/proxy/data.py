"""The image sets the proxy is fitted and judged on, and the real BPG measurements on them.

Fit set: the 256×256 centre and corner crops of the 24 Kodak images (lossless sources) and the
224×224 centre crops of ImageNet train images 200..499 (sorted by file name) — the crop size the
NPP trains on. Held-out set for the fidelity benchmark: ImageNet train images 0..199 (whole
pictures, never used in the fit) and the 24 whole Kodak pictures (their crops are in the fit, so
Kodak numbers are partly in-sample; the ImageNet ones are not).

Real measurements (bits of each file) come from :func:`shared.pipeline.round_trip_batch`, the one
encode path, and are cached as JSON keyed by the codec's settings and the image ids, so the fit
and the benchmark never re-encode what they already measured.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.atomic import atomic_write_json
from shared.codecs.bpg.codec import BpgCodec
from shared.imageio import read_rgb
from shared.paths import cache_dir, shared_data_dir
from shared.pipeline import EncoderPool, round_trip_batch

#: QPs (bpgenc -q) at which the rate model is fitted; others interpolate linearly between them.
FIT_QPS = (22, 25, 28, 31, 34, 37, 40, 43, 46)


@dataclass(frozen=True)
class Sample:
    id: str
    rgb: np.ndarray  # H×W×3 uint8


def _crop(rgb: np.ndarray, size: int, where: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(size, h, w)
    top, left = {"c": ((h - s) // 2, (w - s) // 2), "tl": (0, 0), "br": (h - s, w - s)}[where]
    return np.ascontiguousarray(rgb[top : top + s, left : left + s])


def kodak_files(root: Path | None = None) -> list[Path]:
    folder = (root or shared_data_dir()) / "data" / "kodak"
    files = sorted(folder.glob("kodim*.png"))
    if not files:
        raise FileNotFoundError(f"no Kodak PNGs in {folder} (set PREPICM_SHARED_DIR)")
    return files


def imagenet_train_files(root: Path | None = None) -> list[Path]:
    folder = (root or shared_data_dir()) / "data" / "imagenet" / "train"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no ImageNet train JPEGs in {folder} (set PREPICM_SHARED_DIR)")
    return files


def fit_samples(n_imagenet: int = 300, kodak_crop: int = 256, imagenet_crop: int = 224) -> list[Sample]:
    """The rate model's fit set (see the module docstring)."""
    out: list[Sample] = []
    for f in kodak_files():
        rgb = read_rgb(f)
        out += [Sample(f"kodak/{f.stem}/{w}{kodak_crop}", _crop(rgb, kodak_crop, w)) for w in ("c", "tl", "br")]
    for f in imagenet_train_files()[200 : 200 + n_imagenet]:
        out.append(Sample(f"imagenet-train/{f.stem}/c{imagenet_crop}", _crop(read_rgb(f), imagenet_crop, "c")))
    return out


def kodak_samples() -> list[Sample]:
    return [Sample(f"kodak/{f.stem}", read_rgb(f)) for f in kodak_files()]


def imagenet_holdout_samples(n: int = 200) -> list[Sample]:
    """Whole ImageNet train images 0..n-1: never in the fit set."""
    if n > 200:
        raise ValueError("only ImageNet train images 0..199 are held out from the proxy fit")
    return [Sample(f"imagenet-train/{f.stem}", read_rgb(f)) for f in imagenet_train_files()[:n]]


def _key(codec: BpgCodec, ids: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps([codec.settings(), list(ids)]).encode()).hexdigest()
    return h[:16]


def real_bits(
    samples: Sequence[Sample],
    qps: Sequence[int],
    *,
    level: int = 8,
    workers: int = 2,
    cache: Path | None = None,
) -> dict[int, np.ndarray]:
    """Real BPG file bits of every sample at every QP (int64 arrays in sample order), cached as
    JSON under ``cache`` (default: the project cache root's ``training/proxy-fit``)."""
    codec = BpgCodec(level=level)
    ids = [s.id for s in samples]
    path = (cache or cache_dir("training") / "proxy-fit") / f"bpg-bits-{_key(codec, ids)}.json"
    stored: dict[str, list[int]] = json.loads(path.read_text())["bits"] if path.is_file() else {}
    missing = [q for q in qps if str(q) not in stored]
    if missing:
        with EncoderPool(workers=workers) as pool:
            for q in missing:
                _, bits = round_trip_batch([s.rgb for s in samples], codec, q, pool=pool)
                stored[str(q)] = [int(b) for b in bits]
                atomic_write_json(path, {"codec": codec.settings(), "ids": ids, "bits": stored})
    return {q: np.asarray(stored[str(q)], dtype=np.int64) for q in qps}
