"""A local-filter NPP: a shallow, full-resolution residual CNN with quantization-adaptive gains.

X̄ = clamp(X + r(X, q), 0, 1), where r is four 3×3 convolutions (dilations 1, 2, 4, 1; a 17×17
receptive field), no batch-norm and no down-sampling, and every layer's channels are scaled by
gains that a QA MLP computes from the codec's operating point (as in the paper's QA layers).

Why this exists beside the paper's U-Net (``training.npp.model``): on 2 CPU cores the U-Net sees
a few thousand images in a run, and its updates fitted each batch without carrying over to the
next (docs/training.md). A network this small can only learn what holds across images — local,
content-adaptive filtering such as smoothing texture the task does not read while keeping edges —
and it is translation-equivariant (reflect padding, no position input), so it cannot single out
regions by where they are in the frame. It has no batch-norm, so train and eval mode are the same
network. The output is exactly X when the last convolution is zero (:meth:`reset_to_identity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.npp.qa import QAScale, per_image_cond


@dataclass(frozen=True)
class LocalNppConfig:
    """``width`` channels in the three hidden layers; ``qa_hidden`` the QA MLPs' hidden width."""

    width: int = 24
    qa_hidden: int = 16

    @property
    def quantization_adaptive(self) -> bool:
        return True


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    # Reflect padding: zero padding would put a dark frame into the picture the codec codes.
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, padding_mode="reflect")


class LocalNPP(nn.Module):
    """``forward(x, cond)`` → ``{"x_bar": X̄}``; ``x`` (N,3,H,W) in [0,1], ``cond`` as for
    :class:`training.npp.model.NPP` (the normalised conditioning of ``shared.conditioning``).
    Any side of at least 5 pixels works (reflect padding of the dilation-4 layer)."""

    def __init__(self, config: LocalNppConfig | None = None) -> None:
        super().__init__()
        self.config = config or LocalNppConfig()
        w, m = self.config.width, self.config.qa_hidden
        self.quantization_adaptive = True
        self.conv1, self.conv2 = _conv(3, w), _conv(w, w, 2)
        self.conv3, self.out = _conv(w, w, 4), _conv(w, 3)
        self.qa1, self.qa2, self.qa3, self.qa_out = QAScale(m, w), QAScale(m, w), QAScale(m, w), QAScale(m, 3)

    def reset_to_identity(self) -> None:
        """X̄ = X: the last convolution zero. It learns from the first step, the rest from the
        second (a zero-initialised residual branch)."""
        with torch.no_grad():
            self.out.weight.zero_()
            assert self.out.bias is not None
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        c = per_image_cond(cond, x.shape[0])
        h = F.relu(self.conv1(x)) * self.qa1(c)
        h = F.relu(self.conv2(h)) * self.qa2(c)
        h = F.relu(self.conv3(h)) * self.qa3(c)
        residual = self.out(h) * self.qa_out(c)
        return {"x_bar": torch.clamp(x + residual, 0.0, 1.0)}
