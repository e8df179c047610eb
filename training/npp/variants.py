"""The registry of NPP variants. Names are stable: configs, CLIs and manifests refer to them."""

from __future__ import annotations

from dataclasses import dataclass

from shared.registry import Registry
from training.npp.gain import GainNPP, GainNppConfig
from training.npp.local import LocalNPP, LocalNppConfig
from training.npp.model import NPP, NppConfig

#: Every NPP architecture: the paper's pixel + U-Net network, the shallow local filter, or the
#: detail-gain map.
NppModule = NPP | LocalNPP | GainNPP
NppArchConfig = NppConfig | LocalNppConfig | GainNppConfig


@dataclass(frozen=True)
class NppVariant:
    name: str
    config: NppArchConfig
    description: str

    def build(self) -> NppModule:
        if isinstance(self.config, LocalNppConfig):
            return LocalNPP(self.config)
        if isinstance(self.config, GainNppConfig):
            return GainNPP(self.config)
        return NPP(self.config)


NPP_VARIANTS: Registry[NppVariant] = Registry("NPP variant")

#: Hidden widths m of the eight QA MLPs in the authors' code (pixel ×2, down 1–3, up 2–4).
PAPER_QA_HIDDEN = (16, 16, 32, 32, 64, 64, 64, 32)


def _register(name: str, config: NppArchConfig, description: str) -> None:
    NPP_VARIANTS.register(name, NppVariant(name, config, description))


_register("paper", NppConfig(), "paper NPP without QA layers, one QP per network (9,422,235 params)")
_register(
    "paper_qa",
    NppConfig(qa_hidden=PAPER_QA_HIDDEN),
    "paper NPP with quantization-adaptive layers, one network for all QPs (9,461,537 params)",
)
_register(
    "lite_qa",
    NppConfig(widths=(16, 32, 64, 128), qa_hidden=(8, 8, 16, 16, 32, 32, 32, 16)),
    "half-width QA NPP for CPU-only edges (U-Net 16/32/64/128, ~5.1 GFLOPs at 224×224)",
)
_register(
    "lite_qa_signed",
    NppConfig(widths=(16, 32, 64, 128), qa_hidden=(8, 8, 16, 16, 32, 32, 32, 16), signed_head=True),
    "lite_qa whose U-Net branch adds a signed residual (no final ReLU): it can remove detail, not only add",
)
_register(
    "nano_qa",
    NppConfig(widths=(8, 16, 32, 64), qa_hidden=(8, 8, 8, 8, 16, 16, 16, 8)),
    "quarter-width QA NPP for small CPUs (U-Net 8/16/32/64, ~1.3 GFLOPs at 224×224)",
)
_register(
    "local_qa",
    LocalNppConfig(width=24, qa_hidden=16),
    "shallow QA local filter (four 3×3 convs, dilations 1/2/4/1, no BN, ~12k params, ~0.6 GFLOPs at 224×224)",
)
_register(
    "gain_qa",
    GainNppConfig(widths=(16, 32, 64), qa_hidden=16, sigma=1.5),
    "QA detail-gain map: keeps, removes or boosts fine detail (σ 1.5 px) region by region; a filter by "
    "construction (101,794 params)",
)
_register(
    "gain",
    GainNppConfig(widths=(16, 32, 64), qa_hidden=16, sigma=1.5, qa=False),
    "gain_qa without its QA layers: one detail-gain map whatever the q (the no-QA ablation)",
)
_register(
    "gain_qa_lite0",
    GainNppConfig(widths=(16, 32, 64), qa_hidden=16, sigma=1.5, guide="efficientnet_lite0"),
    "gain_qa that also sees EfficientNet-Lite0's frozen early features (to 1/16) before deciding the map; "
    "a filter by construction (181,634 trained + 700,768 frozen params)",
)
_register(
    "gain_qa_certainty",
    GainNppConfig(widths=(16, 32, 64), qa_hidden=16, sigma=1.5, certainty="efficientnet_lite0"),
    "gain_qa whose whole map also shifts with how sure a frozen EfficientNet-Lite0 is of the picture; "
    "a filter by construction (101,891 trained + 4,652,008 frozen params)",
)
_register(
    "test_tiny",
    NppConfig(widths=(4, 8, 8, 16), qa_hidden=(4,) * 8),
    "tiny QA NPP for fast tests (no use beyond tests)",
)


def build_npp(name: str) -> NppModule:
    """A freshly initialised NPP of a registered variant."""
    return NPP_VARIANTS.get(name).build()
