"""Forward through the real codec, backward through the proxy (Lu et al., TCSVT 2024, §III-C).

With sg = stop-gradient, Ŷ/R_p the proxy's reconstruction and bits, X̂_codec/R_codec the real
codec's decoded pixels and file bits::

    X̂ = Ŷ + sg(X̂_codec − Ŷ)        R = R_p + sg(R_codec − R_p)

Written as ``X̂_codec + (Ŷ − sg(Ŷ))``: the same value and gradient, but the value is the real
codec's to the last bit (the textbook form rounds twice in floating point). The real codec runs
through :func:`shared.pipeline.round_trip_batch` (the one encode path), optionally in an
:class:`shared.pipeline.EncoderPool`; with a pool the codec works while the proxy runs.

``mode="proxy"`` is the paper's ablation "NPP + proxy only": the proxy in the forward pass too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import torch

from shared.codecs import Codec, get_codec
from shared.pipeline import EncoderPool, round_trip_batch
from training.proxy.model import BpgProxy

Mode = Literal["real", "proxy"]
MODES = ("real", "proxy")


def to_frames(x: torch.Tensor) -> list[np.ndarray]:
    """(N,3,H,W) in [0,1] → the 8-bit RGB frames the codec is given (round half to even)."""
    u8 = (x.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return list(u8.permute(0, 2, 3, 1).cpu().numpy())


def _qualities(quality: int | torch.Tensor | list[int], n: int) -> list[int]:
    if isinstance(quality, torch.Tensor):
        qs = [int(v) for v in quality.reshape(-1).tolist()]
    elif isinstance(quality, int | np.integer):
        qs = [int(quality)]
    else:
        qs = [int(v) for v in quality]
    if len(qs) == 1:
        qs = qs * n
    if len(qs) != n:
        raise ValueError(f"{len(qs)} qualities for {n} images")
    return qs


class StraightThroughCodec(torch.nn.Module):
    """Real codec values, proxy gradients. ``forward(x_bar, quality)`` → dict of tensors:
    ``x_hat``, ``bits``, ``bpp`` (what the loss uses) and ``proxy_x_hat``, ``proxy_bits``
    (the proxy's own, with gradient) and, in ``real`` mode, ``codec_bits`` (no gradient)."""

    def __init__(self, proxy: BpgProxy, codec: Codec | str = "bpg", pool: EncoderPool | None = None,
                 mode: Mode = "real") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.proxy = proxy
        self.codec = get_codec(codec) if isinstance(codec, str) else codec
        if self.codec.name != "bpg":
            raise ValueError(f"the proxy models BPG; got codec {self.codec.name!r}")
        self.pool = pool
        self.mode = mode

    def real_codec(self, x_bar: torch.Tensor, qualities: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        decoded, bits = round_trip_batch(to_frames(x_bar), self.codec, qualities, pool=self.pool)
        x = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(device=x_bar.device, dtype=x_bar.dtype)
        return x / 255.0, torch.from_numpy(bits).to(device=x_bar.device, dtype=x_bar.dtype)

    def forward(self, x_bar: torch.Tensor, quality: int | torch.Tensor | list[int],
                quantiser: str | None = None) -> dict[str, torch.Tensor]:
        n, _, h, w = x_bar.shape
        qs = _qualities(quality, n)
        q_t = torch.tensor(qs, dtype=x_bar.dtype, device=x_bar.device)
        if self.mode == "proxy":
            p = self.proxy(x_bar, q_t, quantiser)
            return {"x_hat": p["x_hat"], "bits": p["bits"], "bpp": p["bpp"], "proxy_x_hat": p["x_hat"],
                    "proxy_bits": p["bits"]}
        with ThreadPoolExecutor(max_workers=1) as ex:  # the codec (in the pool's workers) runs meanwhile
            job = ex.submit(self.real_codec, x_bar, qs)
            p = self.proxy(x_bar, q_t, quantiser)
            codec_x, codec_bits = job.result()
        x_hat = codec_x + (p["x_hat"] - p["x_hat"].detach())
        bits = codec_bits + (p["bits"] - p["bits"].detach())
        return {"x_hat": x_hat, "bits": bits, "bpp": bits / float(h * w), "proxy_x_hat": p["x_hat"],
                "proxy_bits": p["bits"], "codec_bits": codec_bits}
