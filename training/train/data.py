"""Deterministic training batches: which images, crops, flips and QPs step s sees depends only on
(seed, s), never on what ran before, so a resumed run sees exactly the batches an uninterrupted
run would, on any machine.

Images: the files of one folder sorted by name, split by index into a training range and a
held-out range (validation and checkpoint selection; never trained on). Each epoch is a fresh
permutation of the training range drawn from (seed, epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shared.conditioning import conditioning_value
from shared.imageio import list_images, read_rgb
from training.train.config import DataConfig


class DataError(ValueError):
    """The image folder or split cannot give batches."""


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor  # (N,3,crop,crop) in [0,1]
    quality: torch.Tensor  # (N,) int64 bpgenc q
    ids: tuple[str, ...]


def bpg_conditioning(quality: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """The NPP's conditioning (N,1) for per-image bpgenc q values (N,)."""
    return torch.tensor([[conditioning_value("bpg", int(q))] for q in quality], device=device)


def fit_crop(rgb: np.ndarray, crop: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if min(h, w) >= crop:
        return rgb
    s = crop / min(h, w)  # upscale a small image so a crop fits (rare in ImageNet-sized sets)
    size = (max(crop, round(w * s)), max(crop, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def load_picture(path: Path, crop: int, resize: int | None = None) -> np.ndarray:
    """The RGB picture as training crops it: squashed to resize×resize (area filter) when given,
    then upscaled if a side is under the crop."""
    rgb = read_rgb(path)
    if resize is not None:
        rgb = np.asarray(Image.fromarray(rgb).resize((resize, resize), Image.Resampling.BOX))
    return fit_crop(rgb, crop)


def epoch_index(seed: int, g: int, n: int, stream: int = 1) -> int:
    """Which of ``n`` items is the ``g``-th sample: each epoch a fresh permutation drawn from
    (seed, epoch, stream)."""
    return int(np.random.default_rng([seed, g // n, stream]).permutation(n)[g % n])


class TrainImages:
    def __init__(self, cfg: DataConfig, seed: int, qp_range: tuple[int, int]) -> None:
        files = list_images(cfg.path())
        if not files:
            raise DataError(f"no images in {cfg.path()}")
        end = len(files) if cfg.count is None else cfg.first + cfg.count
        self.train_files = files[cfg.first : end]
        self.holdout_files = files[cfg.holdout_first : cfg.holdout_first + cfg.holdout_count]
        if not self.train_files:
            raise DataError(f"training range [{cfg.first}, {end}) of {cfg.path()} ({len(files)} images) is empty")
        overlap = set(self.train_files) & set(self.holdout_files)
        if overlap:
            raise DataError(f"{len(overlap)} held-out images are also in the training range (e.g. {min(overlap).name})")
        self.cfg, self.seed, self.qp_range = cfg, seed, qp_range
        self._cache: dict[Path, np.ndarray] = {}

    def _load(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            self._cache[path] = load_picture(path, self.cfg.crop, self.cfg.resize)
        return self._cache[path]

    def _index(self, g: int) -> int:
        return epoch_index(self.seed, g, len(self.train_files))

    def batch(self, step: int, batch_size: int) -> Batch:
        """The batch of training step ``step`` (0-based)."""
        rng = np.random.default_rng([self.seed, step, 2])
        crop = self.cfg.crop
        xs, ids = [], []
        for k in range(batch_size):
            path = self.train_files[self._index(step * batch_size + k)]
            rgb = self._load(path)
            h, w = rgb.shape[:2]
            top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            c = rgb[top : top + crop, left : left + crop]
            if self.cfg.hflip and rng.random() < 0.5:
                c = c[:, ::-1]
            xs.append(torch.from_numpy(np.array(c)).permute(2, 0, 1))  # a writable copy
            ids.append(path.name)
        q = rng.integers(self.qp_range[0], self.qp_range[1] + 1, size=batch_size)
        return Batch(torch.stack(xs).float() / 255.0, torch.from_numpy(q), tuple(ids))

    def holdout(self) -> Batch:
        """Centre crops of the held-out images (quality left to the caller: zeros)."""
        crop, xs = self.cfg.crop, []
        for p in self.holdout_files:
            rgb = self._load(p)
            h, w = rgb.shape[:2]
            top, left = (h - crop) // 2, (w - crop) // 2
            c = np.array(rgb[top : top + crop, left : left + crop])  # a copy: a resized picture is read-only
            xs.append(torch.from_numpy(c).permute(2, 0, 1))
        if not xs:
            raise DataError("no held-out images configured")
        return Batch(torch.stack(xs).float() / 255.0, torch.zeros(len(xs), dtype=torch.int64),
                     tuple(p.name for p in self.holdout_files))
