"""A detail-gain NPP: a small network that decides, region by region, how much fine detail to keep.

X̄ = clamp(B + g·(X − B), 0, 1), where B is X blurred by a fixed Gaussian (σ = ``sigma`` pixels)
and g ∈ [0, 2] a gain map (1 keeps the picture, 0 blurs that region, 2 sharpens it). A strided
encoder with dilated context layers and quantization-adaptive gains computes g at 1/8 of the
picture's resolution from the picture and the codec's operating point; it is upsampled
bilinearly. Every output is, by construction, a spatially varying filter of the picture: a flat
region stays flat whatever the weights, and the network cannot paint per-pixel patterns.

Why: per-picture optimisation restricted to exactly this form (``benchmarks/headroom_probe.py
--form detail_gain --window``) moves BPG's rate–accuracy curve as far on a classifier it never
saw as free pixels do, while free-pixel optima turned out to be a per-pixel pattern no network
could learn (docs/training.md). Here the network only has to predict a smooth map.

With a ``guide`` (a classifier of the task registry) the map also sees that classifier's frozen
early features, so it can depend on what is where, not only on local texture. It reproduces far
more of the per-picture optima that way, yet on ImageNet val it gave the same curve as the
unguided network (docs/training.md, lesson 10).

With a ``certainty`` classifier the network also sees how sure that frozen classifier is of the
picture (its whole prediction: entropy, top probability, margin), and a small MLP of that and q
shifts the whole map. The optima blur pictures the classifier is sure of far more than those it
doubts, an overall level that the picture's texture does not reveal (docs/training.md, lesson 13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shared.tasks.classifiers import Certainty, EarlyFeatures, ImageClassifier
from training.npp.qa import QAScale, per_image_cond


@dataclass(frozen=True)
class GainNppConfig:
    """``widths`` of the three stride-2 encoder layers (the last also of the two context
    layers), ``qa_hidden`` the QA MLPs' hidden width, ``sigma`` the Gaussian's σ in pixels."""

    widths: tuple[int, int, int] = (16, 32, 64)
    qa_hidden: int = 16
    sigma: float = 1.5
    #: a classifier of the task registry whose frozen early features (1/8 and 1/16) join the
    #: encoder's before the last context layer, or None; the map can then follow *what* is where
    guide: str | None = None
    #: channels each guide feature map is projected to
    guide_width: int = 32
    #: a classifier of the task registry whose frozen prediction on the picture (how sure it is)
    #: shifts each picture's whole map with q, or None
    certainty: str | None = None
    #: QA layers scale every layer's channels by q; without them the map ignores q (the
    #: paper's "no QA" ablation, one network asked to serve every q)
    qa: bool = True

    @property
    def quantization_adaptive(self) -> bool:
        return self.qa


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian of σ ``sigma``, radius ⌈3σ⌉."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable low-pass of (N,3,H,W) by the 1-D ``kernel``, edges replicated."""
    r = kernel.shape[0] // 2
    k = kernel.to(x.dtype)
    x = F.conv2d(F.pad(x, [r, r, 0, 0], mode="replicate"), k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(F.pad(x, [0, 0, r, r], mode="replicate"), k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


def apply_detail_gain(x: torch.Tensor, low: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``low + gain·(x − low)`` with the gain map (N,1,h,w) upsampled bilinearly to x's size and
    clamped to [0, 2]."""
    g = F.interpolate(gain, size=[x.shape[-2], x.shape[-1]], mode="bilinear", align_corners=False)
    return low + g.clamp(0.0, 2.0) * (x - low)


def _classifier(task: str) -> ImageClassifier:
    from shared.tasks import get_task

    model = get_task(task)
    if not isinstance(model, ImageClassifier):
        raise ValueError(f"a guide or certainty must be an image classifier, {task!r} is a {model.kind} model")
    return model


class _Unscaled(nn.Module):
    """What a QA layer becomes without QA: a factor of 1 whatever the conditioning."""

    def __init__(self, hidden: int, channels: int) -> None:
        super().__init__()

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return cond.new_ones(())


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    # replicate, not zero, padding: the map should follow content, not the frame's position
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, padding_mode="replicate")


class GainNPP(nn.Module):
    """``forward(x, cond)`` → ``{"x_bar": X̄, "gain": g}`` (g at 1/8 resolution, before clamping);
    ``x`` (N,3,H,W) in [0,1], ``cond`` the normalised conditioning of ``shared.conditioning``.
    Any size works. No batch-norm: train and eval mode are the same network."""

    def __init__(self, config: GainNppConfig | None = None) -> None:
        super().__init__()
        self.config = config or GainNppConfig()
        (w1, w2, w3), m = self.config.widths, self.config.qa_hidden
        self.quantization_adaptive = self.config.qa
        self.enc1, self.enc2, self.enc3 = _conv(3, w1, 2), _conv(w1, w2, 2), _conv(w2, w3, 2)
        self.ctx1 = _conv(w3, w3, dilation=2)
        # with a guide: fuse its features at 1/8, then a shorter context reach (it sees far already)
        self.ctx2 = _conv(w3, w3, dilation=2 if self.config.guide else 4)
        self.out = nn.Conv2d(w3, 1, 1)
        scale = QAScale if self.config.qa else _Unscaled
        self.qa1, self.qa2, self.qa3 = scale(m, w1), scale(m, w2), scale(m, w3)
        self.qa4, self.qa5, self.qa_out = scale(m, w3), scale(m, w3), scale(m, 1)
        self.guide: EarlyFeatures | None = None
        if self.config.guide is not None:
            self.guide = _classifier(self.config.guide).early_features()
            c8, c16 = self.guide.channels
            g = self.config.guide_width
            self.proj8, self.proj16 = nn.Conv2d(c8, g, 1), nn.Conv2d(c16, g, 1)
            self.fuse, self.qa_fuse = _conv(w3 + 2 * g, w3), scale(m, w3)
        self.certainty: Certainty | None = None
        if self.config.certainty is not None:
            self.certainty = _classifier(self.config.certainty).certainty()
            # (q, entropy, top probability, margin) → one shift of the whole gain map
            self.level = nn.Sequential(nn.Linear(4, m), nn.ReLU(), nn.Linear(m, 1))
        # plain floats, not a buffer: no state to save, and TorchScript and ONNX see constants
        self.taps = [float(t) for t in gaussian_kernel(self.config.sigma)]

    def reset_to_identity(self) -> None:
        """g = 1 everywhere (X̄ = X up to rounding): the output layer zero. It learns from the first
        step, the rest from the second."""
        with torch.no_grad():
            self.out.weight.zero_()
            assert self.out.bias is not None
            self.out.bias.zero_()
            if self.certainty is not None:
                last = self.level[2]
                assert isinstance(last, nn.Linear)
                last.weight.zero_()
                last.bias.zero_()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        # without QA layers q is ignored, whether or not a caller passes it
        c = per_image_cond(cond, x.shape[0]) if self.quantization_adaptive else x.new_zeros(x.shape[0], 1)
        h = F.relu(self.enc1(x)) * self.qa1(c)
        h = F.relu(self.enc2(h)) * self.qa2(c)
        h = F.relu(self.enc3(h)) * self.qa3(c)
        h = F.relu(self.ctx1(h)) * self.qa4(c)
        if self.guide is not None:
            f8, f16 = self.guide(x)
            size = [h.shape[-2], h.shape[-1]]
            f8 = F.interpolate(f8, size=size, mode="bilinear", align_corners=False)
            f16 = F.interpolate(f16, size=size, mode="bilinear", align_corners=False)
            h = torch.cat([h, F.relu(self.proj8(f8)), F.relu(self.proj16(f16))], 1)
            h = F.relu(self.fuse(h)) * self.qa_fuse(c)
        h = F.relu(self.ctx2(h)) * self.qa5(c)
        gain = 1.0 + self.out(h) * self.qa_out(c)
        if self.certainty is not None:
            gain = gain + self.level(torch.cat([c, self.certainty(x)], 1)).view(-1, 1, 1, 1)
        x_bar = apply_detail_gain(x, blur(x, torch.tensor(self.taps, dtype=x.dtype, device=x.device)), gain)
        return {"x_bar": torch.clamp(x_bar, 0.0, 1.0), "gain": gain}
