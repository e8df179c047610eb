"""Codecs that Pillow provides: JPEG (libjpeg-turbo), WebP, AVIF (libavif/aom), JPEG XL (plugin)."""

from __future__ import annotations

import importlib.metadata
import io
import warnings
from typing import Any, ClassVar

import numpy as np
import PIL
from PIL import Image, UnidentifiedImageError, features

from shared.codecs.base import Codec, QualityScale, StreamInfo, check_rgb, check_size
from shared.codecs.errors import CodecError, CorruptStreamError, StreamTooLargeError
from shared.codecs.registry import register_codec


class _PillowCodec(Codec):
    pil_format: ClassVar[str]
    magic: ClassVar[tuple[bytes, ...]]
    library: ClassVar[str]  # Pillow's feature name of the library that encodes and decodes

    def library_version(self) -> str:
        """Pillow's and the codec library's versions: they determine both the bytes and the pixels."""
        return f"pillow-{PIL.__version__}-{self.library}-{features.version(self.library)}"

    def decoder_id(self) -> str:
        return f"{self.name}-{self.library_version()}"

    def _save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality}

    def encode(self, image: np.ndarray, quality: int | None = None) -> bytes:
        rgb = check_rgb(image)
        q = self._quality(quality)
        buf = io.BytesIO()
        try:
            Image.fromarray(rgb, "RGB").save(buf, format=self.pil_format, **self._save_options(q))
        except (OSError, ValueError, RuntimeError) as exc:
            raise CodecError(f"{self.name} encoder failed: {exc}") from exc
        return buf.getvalue()

    def _open(self, data: bytes) -> Image.Image:
        if not data:
            raise CorruptStreamError(f"empty {self.name} stream")
        if not any(data.startswith(m) or m in data[:16] for m in self.magic):
            raise CorruptStreamError(f"not a {self.name} stream (bad signature)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data), formats=[self.pil_format])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow's own limit fires on the header's size before ours can: the same refusal
            raise StreamTooLargeError(f"{self.name} stream declares too large a picture: {exc}") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, RuntimeError) as exc:
            raise CorruptStreamError(f"cannot parse {self.name} stream: {exc}") from exc
        check_size(*img.size)
        return img

    def decode(self, data: bytes) -> np.ndarray:
        img = self._open(data)
        try:
            img.load()
        except (OSError, ValueError, SyntaxError, EOFError, RuntimeError) as exc:
            raise CorruptStreamError(f"truncated or corrupt {self.name} stream: {exc}") from exc
        return np.asarray(img.convert("RGB"))

    def info(self, data: bytes) -> StreamInfo:
        img = self._open(data)
        mode = img.mode
        fmt = "gray" if mode in ("L", "I;16") else mode.lower()
        extra: dict[str, Any] = {}
        sampling = getattr(img, "layers", None)
        if self.pil_format == "JPEG":
            from PIL import JpegImagePlugin

            sub = JpegImagePlugin.get_sampling(img)
            fmt = {0: "444", 1: "422", 2: "420"}.get(sub, fmt) if mode != "L" else "gray"
            extra["progressive"] = bool(img.info.get("progressive", False))
        elif sampling is not None:
            extra["layers"] = sampling
        return StreamInfo(self.name, img.size[0], img.size[1], fmt, 8, extra)


@register_codec
class JpegCodec(_PillowCodec):
    name = "jpeg"
    extension = ".jpg"
    aliases = (".jpeg",)
    pil_format = "JPEG"
    library = "libjpeg_turbo"
    magic = (b"\xff\xd8\xff",)
    quality = QualityScale("quality", 1, 100, 75, True, "IJG quality: 1 worst, 100 best")
    description = "JPEG via Pillow/libjpeg-turbo, 4:2:0, optimized Huffman tables"

    def __init__(self, subsampling: str = "4:2:0") -> None:
        self.subsampling = subsampling

    def _save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality, "optimize": True, "subsampling": self.subsampling}

    def settings(self) -> dict[str, Any]:
        return {"subsampling": self.subsampling, "optimize": True, "library": self.library_version()}


@register_codec
class WebpCodec(_PillowCodec):
    name = "webp"
    extension = ".webp"
    pil_format = "WEBP"
    library = "webp"
    magic = (b"WEBP",)
    quality = QualityScale("quality", 0, 100, 75, True, "libwebp lossy quality: 0 worst, 100 best")
    description = "WebP (lossy, VP8) via Pillow/libwebp, method 6"

    def __init__(self, method: int = 6) -> None:
        self.method = method

    def _save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality, "method": self.method}

    def settings(self) -> dict[str, Any]:
        return {"method": self.method, "library": self.library_version()}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if features.check("webp") else "this Pillow build lacks WebP support"


@register_codec
class AvifCodec(_PillowCodec):
    name = "avif"
    extension = ".avif"
    pil_format = "AVIF"
    library = "avif"
    magic = (b"ftypavif", b"ftypavis")
    quality = QualityScale("quality", 0, 100, 75, True, "libavif quality: 0 worst, 100 best")
    description = "AVIF (AV1 intra) via Pillow/libavif+aom, 4:2:0, speed 6"

    def __init__(self, speed: int = 6) -> None:
        self.speed = speed

    def _save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality, "speed": self.speed, "subsampling": "4:2:0"}

    def settings(self) -> dict[str, Any]:
        return {"speed": self.speed, "subsampling": "4:2:0", "library": self.library_version()}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if features.check("avif") else "this Pillow build lacks AVIF support (Pillow >= 11)"


@register_codec
class JxlCodec(_PillowCodec):
    name = "jxl"
    extension = ".jxl"
    pil_format = "JXL"
    library = "pillow-jxl-plugin"
    magic = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")
    # quality 100 means distance 0, which libjxl only accepts in lossless mode
    quality = QualityScale("quality", 1, 99, 75, True, "libjxl quality (distance mapped): 1 worst, 99 best")
    description = "JPEG XL via pillow-jxl-plugin (libjxl), effort 7"

    def __init__(self, effort: int = 7) -> None:
        self.effort = effort
        import pillow_jxl  # noqa: F401  registers the JXL plugin with Pillow

    def _save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality, "effort": self.effort, "lossless": False}

    def library_version(self) -> str:
        # libjxl is bundled inside the plugin's wheel; the plugin's version pins it
        return f"pillow-{PIL.__version__}-pillow-jxl-plugin-{importlib.metadata.version('pillow-jxl-plugin')}"

    def settings(self) -> dict[str, Any]:
        return {"effort": self.effort, "library": self.library_version()}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import pillow_jxl  # noqa: F401
        except ImportError:
            return "install the extra: pip install 'prepicm[codecs-extra]' (pillow-jxl-plugin)"
        return None
