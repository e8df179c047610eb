"""Uploaded frames → RGB arrays, with the size checked from the header before anything is decoded.

Pillow opens lazily: ``Image.open`` parses only the header, so a 100000×100000 PNG of a few hundred
bytes is refused here without allocating its 30 GB of pixels.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from edge.errors import FrameDecodeError, FrameTooLargeError
from shared.codecs.base import MAX_SIDE

#: the container formats a camera may upload (Pillow plugin names); everything else is refused
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "PPM")


def decode_frame(data: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded PNG/JPEG/… to H×W×3 uint8 RGB (greyscale, palette and alpha converted; the
    first frame of an animation). The declared size is checked against ``max_pixels`` (and the
    codecs' side limit) before decoding; truncated or corrupt data raise :class:`FrameDecodeError`."""
    if not data:
        raise FrameDecodeError("the frame is empty")
    try:
        with warnings.catch_warnings():
            # our own limit applies before Pillow's decompression-bomb warning could
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                w, h = int(img.width), int(img.height)
                if w < 1 or h < 1:
                    raise FrameDecodeError(f"the image is empty ({w}x{h})")
                if w * h > max_pixels or w > MAX_SIDE or h > MAX_SIDE:
                    raise FrameTooLargeError(f"the image is {w}x{h} = {w * h} pixels; this edge accepts at most "
                                             f"{max_pixels} pixels and {MAX_SIDE} per side")
                img.load()  # a truncated file fails here, not later
                rgb = img.convert("RGB")
                return np.asarray(rgb, dtype=np.uint8).copy()
    except (FrameDecodeError, FrameTooLargeError):
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own header check, for gigapixel declarations
        raise FrameTooLargeError(f"{exc}; this edge accepts at most {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise FrameDecodeError(f"not an image this edge reads ({', '.join(FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise FrameDecodeError(f"not a readable image ({', '.join(FORMATS)}): {exc}") from None
