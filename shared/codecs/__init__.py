"""Standard image codecs behind one interface, and the registry that names them.

>>> from shared.codecs import get_codec
>>> bpg = get_codec("bpg")            # bpgenc defaults: q 29, level 8 (x265 veryslow, tune ssim)
>>> data = bpg.encode(rgb, 32)        # rgb: H×W×3 uint8  →  a .bpg file's bytes
>>> out = bpg.decode(data)            # → H×W×3 uint8
"""

# Importing a codec module registers it; this order is the order every CLI lists them in.
# isort: off
from shared.codecs import pillow_codecs as _pillow_codecs  # noqa: F401
from shared.codecs.bpg import codec as _bpg  # noqa: F401
from shared.codecs import vvc as _vvc  # noqa: F401
# isort: on
from shared.codecs.base import Codec, QualityScale, StreamInfo
from shared.codecs.errors import (
    CodecError,
    CodecUnavailableError,
    CorruptStreamError,
    InvalidImageError,
    InvalidQualityError,
    StreamTooLargeError,
    UnsupportedFeatureError,
)
from shared.codecs.registry import CODECS, codec_for_extension, codec_names, detect_codec, get_codec

__all__ = [
    "CODECS",
    "Codec",
    "CodecError",
    "CodecUnavailableError",
    "CorruptStreamError",
    "InvalidImageError",
    "InvalidQualityError",
    "QualityScale",
    "StreamInfo",
    "StreamTooLargeError",
    "UnsupportedFeatureError",
    "codec_for_extension",
    "codec_names",
    "detect_codec",
    "get_codec",
]
