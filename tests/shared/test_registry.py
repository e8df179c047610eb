from __future__ import annotations

import pytest

from shared.codecs import CODECS, CodecUnavailableError, codec_for_extension, detect_codec, get_codec
from shared.registry import Registry, RegistryError


def test_registry_rejects_duplicates_and_names_choices() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("One", 1)
    assert reg.get("one") == 1 and "ONE" in reg and len(reg) == 1
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("one", 2)
    with pytest.raises(RegistryError, match="unknown widget 'two'; choose one of: one"):
        reg.get("two")


def test_codec_registry_is_the_single_list() -> None:
    assert CODECS.names() == ["jpeg", "webp", "avif", "jxl", "bpg", "vvc"]
    with pytest.raises(RegistryError, match="unknown codec 'heif'"):
        get_codec("heif")


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif", "jxl", "bpg"])
def test_detect_codec_from_signature(name: str) -> None:
    import numpy as np

    codec = get_codec(name, level=1) if name == "bpg" else get_codec(name)
    data = codec.encode(np.full((16, 16, 3), 128, np.uint8), codec.quality.default)
    assert detect_codec(data) == name


def test_detect_codec_falls_back_to_extension() -> None:
    assert detect_codec(b"\x00\x00\x00\x01\x00", "x.266") == "vvc"
    assert codec_for_extension("JPEG") == "jpeg"
    with pytest.raises(CodecUnavailableError, match="unknown signature"):
        detect_codec(b"hello")
