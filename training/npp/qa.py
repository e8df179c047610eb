"""Quantization-adaptive (QA) layers: a tiny MLP that turns the conditioning scalar into per-channel
gains that multiply a feature map, so one network serves every QP."""

from __future__ import annotations

import torch
from torch import nn


class QAScale(nn.Module):
    """Linear(1→hidden)-ReLU-Linear(hidden→channels)-ReLU; returns gains shaped (N, C, 1, 1).

    The trailing ReLU keeps gains non-negative (a gain can switch a channel off, never flip it).
    ``cond`` is (N, 1): one conditioning value per image, so a batch may mix QPs in training.
    """

    def __init__(self, hidden: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(
            nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.ReLU()
        )
        # Start with gains ≈ 1 that already depend a little on cond: PyTorch's default init can give
        # all-zero gains through the final ReLU, which silences whole channels (and their
        # gradients) of an untrained network; bias 1 plus small weights avoids that.
        last = self.mlp[2]
        assert isinstance(last, nn.Linear)
        nn.init.normal_(last.weight, std=0.1)
        nn.init.ones_(last.bias)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        gains = self.mlp(cond.reshape(-1, 1))
        return gains.reshape(-1, self.channels, 1, 1)


def per_image_cond(cond: torch.Tensor | None, batch: int) -> torch.Tensor:
    """The conditioning as (batch, 1) float32: one value per image, a single value broadcast to the
    batch. A QA network cannot run without it."""
    if cond is None:
        raise ValueError("this NPP variant is quantization-adaptive: pass cond")
    c = cond.to(torch.float32).reshape(-1, 1)
    return c.expand(batch, 1) if c.shape[0] == 1 else c
