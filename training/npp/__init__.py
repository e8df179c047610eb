"""The neural preprocessing network (NPP): definition, QA layers and named variants."""

from training.npp.gain import GainNPP, GainNppConfig
from training.npp.local import LocalNPP, LocalNppConfig
from training.npp.model import NPP, PAD_MULTIPLE, NppConfig, count_parameters, pad_to_multiple
from training.npp.variants import NPP_VARIANTS, NppModule, NppVariant, build_npp

__all__ = [
    "NPP",
    "NPP_VARIANTS",
    "PAD_MULTIPLE",
    "GainNPP",
    "GainNppConfig",
    "LocalNPP",
    "LocalNppConfig",
    "NppConfig",
    "NppModule",
    "NppVariant",
    "build_npp",
    "count_parameters",
    "pad_to_multiple",
]
