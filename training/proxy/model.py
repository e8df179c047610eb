"""A differentiable transform-coding proxy of our BPG encoder (HEVC intra via x265) at a QP.

Forward, per image (N,3,H,W RGB in [0,1]) and per bpgenc quality q (one per image):

1. the encoder's colour path (training.proxy.colour): full-range BT.601 YCbCr, chroma 4:2:0 with
   bpgenc's 10-tap filter, 8-bit rounding (straight-through), edge padding to whole blocks;
2. per b×b block, open-loop intra prediction (the cheapest of a few HEVC modes, chosen by the
   rate model's own cost) and the orthonormal DCT of the residual (training.proxy.transform);
3. quantisation at HEVC's step ``2^((QP_slice − 4)/6)``, ``QP_slice = q − 3``, chroma QP from
   H.265's table (training.proxy.quantise), with a named gradient (``ste`` or ``noise``);
4. the rate model (training.proxy.rate) → bits per image, fitted to real BPG file sizes;
5. the reconstruction: dequantise, inverse DCT, add the prediction, 8-bit rounding
   (straight-through), bpgdec's chroma upsampling and YCbCr → RGB, clamped to [0,1].

``forward`` returns ``{"x_hat", "bits", "bpp", "features"}``. No in-loop filters (deblocking,
SAO) and no RDO partitioning are modelled: docs/training.md gives the measured fidelity.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from training.proxy import colour
from training.proxy.quantise import QUANTISERS, chroma_qp, qstep, quantise, slice_qp
from training.proxy.rate import ProxyParams, RateModel, plane_features
from training.proxy.transform import dct2, from_blocks, idct2, predictions, to_blocks


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.clamp(torch.round(x), 0, 255) - x).detach()


def _pad_to(plane: torch.Tensor, b: int) -> torch.Tensor:
    h, w = plane.shape[-2:]
    ph, pw = (-h) % b, (-w) % b
    return F.pad(plane, (0, pw, 0, ph), mode="replicate") if ph or pw else plane


def _quality_tensor(quality: int | float | torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    q = torch.as_tensor(quality, dtype=like.dtype, device=like.device).reshape(-1)
    if q.numel() == 1:
        q = q.expand(n)
    if q.numel() != n:
        raise ValueError(f"{q.numel()} qualities for {n} images")
    if bool(((q < 0) | (q > 51)).any()):
        raise ValueError("BPG quality must lie in 0..51")
    return q


class BpgProxy(torch.nn.Module):
    """See the module docstring. ``quantiser`` is the default gradient ("ste" | "noise" | "hard")."""

    def __init__(self, params: ProxyParams | Path | None = None, quantiser: str = "ste") -> None:
        super().__init__()
        if quantiser not in QUANTISERS:
            raise ValueError(f"unknown quantiser {quantiser!r}; choose one of {', '.join(QUANTISERS)}")
        self.params = params if isinstance(params, ProxyParams) else ProxyParams.load(params)
        self.quantiser = quantiser
        self.rate = RateModel(self.params.qualities, self.params.coefficients)

    def code_plane(self, plane: torch.Tensor, qp: torch.Tensor, quantiser: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One 8-bit-valued plane (N,1,h,w) at slice QP ``qp`` (N,) → (reconstruction, features)."""
        b, h, w = self.params.block_size, plane.shape[-2], plane.shape[-1]
        p = _pad_to(plane, b)
        pred = predictions(p, b, self.params.modes)  # (N, M, by, bx, b, b)
        step = qstep(qp).view(-1, 1, 1, 1, 1, 1)
        u = dct2(to_blocks(p, b).unsqueeze(1) - pred) / step
        with torch.no_grad():  # mode decision: the cheapest prediction under the rate features
            lv = torch.floor(u.abs() + self.params.deadzone_offset)
            cost = (torch.log2(1 + lv) + torch.clamp(lv, max=1)).sum((-1, -2))
            best = cost.argmin(1, keepdim=True)[..., None, None]  # (N, 1, by, bx, 1, 1)
        idx = best.expand(-1, 1, -1, -1, *u.shape[-2:])
        u_sel = torch.take_along_dim(u, idx, dim=1).squeeze(1)
        pred_sel = torch.take_along_dim(pred, idx, dim=1).squeeze(1)
        levels, mag = quantise(u_sel, quantiser, self.params.deadzone_offset)
        rec = from_blocks(pred_sel + idct2(levels * step.squeeze(1)))[..., :h, :w]
        return rec, plane_features(mag)

    def forward(self, x: torch.Tensor, quality: int | float | torch.Tensor,
                quantiser: str | None = None) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"proxy input must be (N,3,H,W) RGB in [0,1], got {tuple(x.shape)}")
        mode = quantiser or self.quantiser
        n, _, h, w = x.shape
        q = _quality_tensor(quality, n, x)
        qp_y = slice_qp(q)
        qp_c = chroma_qp(qp_y)
        y, cb, cr = colour.rgb_to_ycc(x)
        y8 = _ste_round(y)
        cb8 = _ste_round(colour.downsample_420(cb))
        cr8 = _ste_round(colour.downsample_420(cr))
        y_rec, f_y = self.code_plane(y8, qp_y, mode)
        cb_rec, f_cb = self.code_plane(cb8, qp_c, mode)
        cr_rec, f_cr = self.code_plane(cr8, qp_c, mode)
        pixels = torch.full((n, 1), float(h * w), dtype=x.dtype, device=x.device)
        feats = torch.cat([f_y, f_cb + f_cr, pixels / 1000.0, torch.ones_like(pixels)], dim=1)
        bits = self.rate(feats, q)
        y_hat = _ste_round(y_rec)
        cb_up = colour.upsample_420(_ste_round(cb_rec), h, w)
        cr_up = colour.upsample_420(_ste_round(cr_rec), h, w)
        x_hat = torch.clamp(colour.ycc_to_rgb(y_hat, cb_up, cr_up), 0.0, 1.0)
        return {"x_hat": x_hat, "bits": bits, "bpp": bits / float(h * w), "features": feats}
