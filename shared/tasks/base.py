"""The task-model interface: preprocessing, batched prediction on decoded RGB images, a
differentiable loss on [0,1] image tensors, and where the weights come from."""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from shared.imageio import rgb_problem
from shared.manifest import sha256_file
from shared.tasks.outputs import ClassificationOutput, DetectionOutput, TaskOutput
from shared.tasks.weights import WeightsSpec, resolve_weights

TASK_KINDS = ("classification", "detection", "faces")


def check_rgb(image: np.ndarray, index: int = 0) -> np.ndarray:
    """Reject anything that is not an H×W×3 uint8 array (a common mistake: BGR float, CHW)."""
    problem = rgb_problem(image)
    if problem is not None:
        raise ValueError(f"image {index}: {problem}")
    return image


def rgb_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in [0,1]."""
    arr = image if image.flags.writeable and image.flags.c_contiguous else np.array(image, order="C")
    t = torch.from_numpy(arr).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Task networks are frozen: eval mode (BN running stats, no dropout) and no parameter grads."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def check_loss_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"loss input must be a float (N,3,H,W) tensor in [0,1], got {getattr(x, 'shape', x)}")


class TaskModel(ABC):
    """A frozen downstream vision model (classifier, detector, face detector).

    Subclasses set `kind`, `weights_spec`, `batch_size_hint`, build `self.module`, and implement
    `_predict_batch`, `loss` and `distill_target`.
    """

    kind: ClassVar[str]
    weights_spec: ClassVar[WeightsSpec | None] = None
    batch_size_hint: int = 16

    def __init__(
        self,
        name: str,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        random_init: bool = False,
    ) -> None:
        self.name = name
        self.device = torch.device(device)
        self.random_init = random_init
        if random_init and weights is not None:
            raise ValueError(f"{name}: pass either weights=... or random_init=True, not both")
        self.weights_path: Path | None = None
        if not random_init:
            self.weights_path = self.find_weights(weights)

    # ---- weights -------------------------------------------------------------------------
    def find_weights(self, weights: str | Path | None) -> Path | None:
        """Resolve the weights file (subclasses whose weights ship inside a package may override)."""
        if self.weights_spec is None:
            return None if weights is None else Path(weights)
        return resolve_weights(self.name, self.weights_spec, weights)

    @property
    def default_weights_description(self) -> str:
        return self.weights_spec.description if self.weights_spec else "bundled with its package"

    @property
    def weights_description(self) -> str:
        """What this instance actually runs with (shown next to every number it produces)."""
        if self.random_init:
            return "RANDOM weights (random_init=True; for plumbing tests only)"
        return str(self.weights_path) if self.weights_path else self.default_weights_description

    @functools.cached_property
    def weights_identity(self) -> str:
        """The same on every machine for the same weights: the file's sha256, else the description.

        Results and caches key on this, never on a path, so a result made in one checkout resumes
        and pairs with one made in another."""
        if self.weights_path is not None and self.weights_path.is_file():
            return "sha256:" + sha256_file(self.weights_path)
        if self.random_init:  # two random models must never share cached outputs
            digest = hashlib.sha256()
            for t in self.module.state_dict().values():
                digest.update(t.detach().cpu().numpy().tobytes())
            return "random:" + digest.hexdigest()
        return self.weights_description

    # ---- inference -----------------------------------------------------------------------
    def predict(self, images: Sequence[np.ndarray]) -> list[TaskOutput]:
        """Run on decoded RGB images (H×W×3 uint8, any sizes); one output per image."""
        for i, im in enumerate(images):
            check_rgb(im, i)
        outs: list[TaskOutput] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size_hint):
                outs.extend(self._predict_batch(list(images[start : start + self.batch_size_hint])))
        return outs

    def predict_classification(self, images: Sequence[np.ndarray]) -> list[ClassificationOutput]:
        """`predict` for classifiers, typed as such (raises TypeError for other kinds)."""
        outs = self.predict(images)
        if not all(isinstance(o, ClassificationOutput) for o in outs):
            raise TypeError(f"{self.name} is a {self.kind} model, not a classifier")
        return outs  # type: ignore[return-value]

    def predict_detection(self, images: Sequence[np.ndarray]) -> list[DetectionOutput]:
        """`predict` for detectors and face detectors, typed as such (TypeError for classifiers)."""
        outs = self.predict(images)
        if not all(isinstance(o, DetectionOutput) for o in outs):
            raise TypeError(f"{self.name} is a {self.kind} model, not a detector")
        return outs  # type: ignore[return-value]

    @abstractmethod
    def _predict_batch(self, images: list[np.ndarray]) -> list[TaskOutput]: ...

    # ---- training ------------------------------------------------------------------------
    @abstractmethod
    def loss(self, x: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
        """Differentiable task loss on x (N,3,H,W) in [0,1]; returns {"loss": total, <terms>...}."""

    @abstractmethod
    def distill_target(self, x_pristine: torch.Tensor) -> Any:
        """The target that makes `loss` a distillation to this model's prediction on x_pristine."""

    # ---- misc ----------------------------------------------------------------------------
    @property
    @abstractmethod
    def module(self) -> torch.nn.Module: ...

    def to(self, device: str | torch.device) -> TaskModel:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} kind={self.kind} weights={self.weights_description}>"
