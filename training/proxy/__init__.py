"""A differentiable proxy of our BPG encoder, and the straight-through real-codec layer.

>>> from training.proxy import BpgProxy, StraightThroughCodec
>>> proxy = BpgProxy()                          # fitted parameters: bpg_proxy_params.json
>>> out = proxy(x, 32)                          # x_hat, bits, bpp, features (differentiable)
>>> coded = StraightThroughCodec(proxy)(x, 32)  # real BPG values, proxy gradients
"""

from training.proxy.model import BpgProxy
from training.proxy.rate import ProxyParams

__all__ = ["BpgProxy", "ProxyParams", "StraightThroughCodec"]


def __getattr__(name: str) -> object:
    # the real-codec layer pulls in the encode pipeline; import it only when asked for
    if name == "StraightThroughCodec":
        from training.proxy.real_codec import StraightThroughCodec

        return StraightThroughCodec
    raise AttributeError(name)
