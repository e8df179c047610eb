"""The neural preprocessing network (NPP) of Lu et al., "Preprocessing Enhanced Image Compression
for Machine Vision", TCSVT 2024.

X̄ = clamp(pixel_branch(X) + unet_branch(X), 0, 1). Inputs are [0, 1] RGB, NCHW float; any size
works: the input is padded at the bottom/right to a multiple of 16 (reflect, or replicate when a
side is too small to reflect) and the output cropped back to the input's exact size.

The module is TorchScript-scriptable and ONNX-traceable (dict output, no Python-only types).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.npp.qa import QAScale, per_image_cond

#: The U-Net halves the resolution four times, so sides must be multiples of 2**4.
PAD_MULTIPLE = 16

#: Order of the QA sites (used to index ``NppConfig.qa_hidden``).
QA_SITES = ("pixel1", "pixel2", "down1", "down2", "down3", "up2", "up3", "up4")


@dataclass(frozen=True)
class NppConfig:
    """Shape of one NPP variant.

    ``widths`` are the four U-Net level widths (paper: 32/64/128/256; the bottleneck is 2×last).
    ``qa_hidden`` is the hidden width m of each QA MLP in ``QA_SITES`` order, or None for no QA.
    The paper's widths (16,16 | 32,32,64 | 64,64,32) are those of the authors' released code; with
    them the QA network has exactly the 9,461,537 parameters the paper quotes (a single m for all
    eight MLPs matches no integer).
    """

    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    qa_hidden: tuple[int, ...] | None = None
    #: the U-Net head ends without the paper's ReLU, so the branch adds a signed residual
    signed_head: bool = False

    def __post_init__(self) -> None:
        if self.qa_hidden is not None and len(self.qa_hidden) != len(QA_SITES):
            raise ValueError(f"qa_hidden needs {len(QA_SITES)} widths ({', '.join(QA_SITES)})")

    @property
    def quantization_adaptive(self) -> bool:
        return self.qa_hidden is not None


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())


class _Down(nn.Module):
    """Two 3×3 conv-BN-ReLU (the skip), then a stride-2 conv-BN-ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(cin, cout), _conv_bn_relu(cout, cout))
        self.down = _conv_bn_relu(cout, cout, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.body(x)
        return skip, self.down(skip)


class _Up(nn.Module):
    """conv(in→2·out), conv(2·out→2·out), transposed conv ×2 (2·out→out), then concat the skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(cin, 2 * cout), _conv_bn_relu(2 * cout, 2 * cout))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * cout, cout, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.up(self.body(x)), skip], dim=1)


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """Pad bottom/right to a multiple; reflect, or replicate where a side is too small to reflect.

    Reflect avoids the hard edge that zero padding would put into the codec's last block row;
    reflect needs pad < side, so sides under ``multiple`` replicate instead. Exported graphs are
    traced with a large input and keep the reflect path; backends pre-pad tiny inputs on the host.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    if torch.jit.is_tracing():
        # Traced graphs (ONNX export) must keep the pad op even when the example needs none, and
        # cannot keep a shape-dependent branch: always reflect (pads of 0 are no-ops).
        return F.pad(x, [0, pw, 0, ph], mode="reflect")
    if ph == 0 and pw == 0:
        return x
    if ph >= h or pw >= w:
        return F.pad(x, [0, pw, 0, ph], mode="replicate")
    return F.pad(x, [0, pw, 0, ph], mode="reflect")


class NPP(nn.Module):
    """Pixel branch + 4-level U-Net branch, optionally quantization-adaptive.

    ``forward(x, cond)`` → ``{"x_bar": X̄}``; ``x`` (N,3,H,W) in [0,1], ``cond`` (N,1) or (N,) or a
    0-d tensor — the normalised conditioning of ``shared.conditioning`` (ignored without QA).
    """

    def __init__(self, config: NppConfig | None = None) -> None:
        super().__init__()
        self.config = config or NppConfig()
        w1, w2, w3, w4 = self.config.widths
        self.quantization_adaptive = self.config.quantization_adaptive
        self.pixel1 = nn.Conv2d(3, 3, 1)
        self.pixel2 = nn.Conv2d(3, 3, 1)
        self.down1, self.down2 = _Down(3, w1), _Down(w1, w2)
        self.down3, self.down4 = _Down(w2, w3), _Down(w3, w4)
        self.up1, self.up2 = _Up(w4, w4), _Up(2 * w4, w3)
        self.up3, self.up4 = _Up(2 * w3, w2), _Up(2 * w2, w1)
        # The paper's head ends in a ReLU: the U-Net branch can only add brightness, and any pixel
        # it would darken sits at 0 with no gradient. ``signed_head`` drops it (a signed residual).
        last: list[nn.Module] = [] if self.config.signed_head else [nn.ReLU()]
        self.head = nn.Sequential(_conv_bn_relu(2 * w1, w1), _conv_bn_relu(w1, w1), nn.Conv2d(w1, 3, 1), *last)
        # Gains multiply: pixel convs (before their ReLU), the stride-2 outputs of down 1–3 and
        # the concatenated outputs of up 2–4.
        site_channels = (3, 3, w1, w2, w3, 2 * w3, 2 * w2, 2 * w1)
        hidden = self.config.qa_hidden or ()
        self.qa = nn.ModuleList([QAScale(m, c) for m, c in zip(hidden, site_channels, strict=False)])

    def reset_to_identity(self) -> None:
        """(Nearly) the identity: pixel-branch 1×1 convs = I and their QA gains = 1 (the QA MLPs'
        last weights 0, bias 1: they learn their QP dependence from there), the U-Net head's last
        conv = 0 with a tiny positive bias where a ReLU follows it, so the ReLU is open (bias 0 for
        a signed head): that conv learns from the first step and the rest of the U-Net from the
        second (as a zero-initialised residual branch does). The output is then X + 0.001 (X for
        a signed head), clamped."""
        with torch.no_grad():
            for conv in (self.pixel1, self.pixel2):
                conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
                assert conv.bias is not None
                conv.bias.zero_()
            for qa in list(self.qa)[:2]:  # the pixel branch's two gains
                mlp = qa.mlp
                assert isinstance(mlp, nn.Sequential)
                out_layer = mlp[2]
                assert isinstance(out_layer, nn.Linear)
                out_layer.weight.zero_()
                out_layer.bias.fill_(1.0)
            last = self.head[2]
            assert isinstance(last, nn.Conv2d) and last.bias is not None
            last.weight.zero_()
            last.bias.fill_(0.0 if self.config.signed_head else 1e-3)

    def _gains(self, cond: torch.Tensor | None, batch: int) -> list[torch.Tensor]:
        c = per_image_cond(cond, batch)
        gains: list[torch.Tensor] = []
        for layer in self.qa:
            gains.append(layer(c))
        return gains

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2], x.shape[-1]
        xp = pad_to_multiple(x, 16)  # PAD_MULTIPLE (TorchScript needs a literal)
        if self.quantization_adaptive:
            g = self._gains(cond, xp.shape[0])
            g0, g1, g2, g3, g4, g5, g6, g7 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
        else:
            one = torch.ones(1, 1, 1, 1, dtype=xp.dtype, device=xp.device)
            g0 = g1 = g2 = g3 = g4 = g5 = g6 = g7 = one
        pixel = F.relu(self.pixel2(F.relu(self.pixel1(xp) * g0)) * g1)
        s1, d1 = self.down1(xp)
        s2, d2 = self.down2(d1 * g2)
        s3, d3 = self.down3(d2 * g3)
        s4, d4 = self.down4(d3 * g4)
        u1 = self.up1(d4, s4)
        u2 = self.up2(u1, s3) * g5
        u3 = self.up3(u2, s2) * g6
        u4 = self.up4(u3, s1) * g7
        out = torch.clamp(pixel + self.head(u4), 0.0, 1.0)
        return {"x_bar": out[:, :, :h, :w]}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
