"""YOLO-style letterboxing (scale to fit a square, pad with grey 114) and the exact inverse map
of boxes back to the original image's pixel coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PAD_VALUE = 114


@dataclass(frozen=True)
class LetterboxGeometry:
    """How an in_h×in_w image sits inside a size×size letterbox: scaled by `scale`, its top-left
    corner at (left, top) pixels. Boxes map as x' = x·scale + left, y' = y·scale + top."""

    in_h: int
    in_w: int
    size: int
    scale: float
    new_h: int
    new_w: int
    top: int
    left: int

    @staticmethod
    def fit(in_h: int, in_w: int, size: int = 640) -> LetterboxGeometry:
        """The geometry yolov5's `letterbox(auto=False, scaleup=True)` produces."""
        scale = min(size / in_h, size / in_w)
        new_w, new_h = round(in_w * scale), round(in_h * scale)
        # yolov5 splits odd padding with round(d/2 ∓ 0.1): the extra pixel goes bottom/right
        top = round((size - new_h) / 2 - 0.1)
        left = round((size - new_w) / 2 - 0.1)
        return LetterboxGeometry(in_h, in_w, size, scale, new_h, new_w, top, left)

    def to_letterbox(self, boxes: np.ndarray) -> np.ndarray:
        """xyxy boxes in original pixels → letterbox pixels."""
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * self.scale
        out[:, [0, 2]] += self.left
        out[:, [1, 3]] += self.top
        return out.astype(np.float32)

    def from_letterbox(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """xyxy boxes in letterbox pixels → original pixels (clipped to the image by default)."""
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        out[:, [0, 2]] -= self.left
        out[:, [1, 3]] -= self.top
        out /= self.scale
        if clip:
            out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.in_w)
            out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.in_h)
        return out.astype(np.float32)


def letterbox_image(image: np.ndarray, size: int = 640) -> tuple[np.ndarray, LetterboxGeometry]:
    """H×W×3 uint8 → size×size×3 uint8, resized with OpenCV bilinear as yolov5 does."""
    import cv2

    geo = LetterboxGeometry.fit(image.shape[0], image.shape[1], size)
    resized = image
    if (geo.new_h, geo.new_w) != image.shape[:2]:
        resized = cv2.resize(image, (geo.new_w, geo.new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    out[geo.top : geo.top + geo.new_h, geo.left : geo.left + geo.new_w] = resized
    return out, geo


def letterbox_tensor(x: torch.Tensor, size: int = 640) -> tuple[torch.Tensor, LetterboxGeometry]:
    """(N,3,H,W) in [0,1] → (N,3,size,size), differentiable (bilinear, grey 114/255 padding)."""
    geo = LetterboxGeometry.fit(x.shape[-2], x.shape[-1], size)
    if (geo.new_h, geo.new_w) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=(geo.new_h, geo.new_w), mode="bilinear", align_corners=False)
    pad = (geo.left, size - geo.new_w - geo.left, geo.top, size - geo.new_h - geo.top)
    return F.pad(x, pad, value=PAD_VALUE / 255.0), geo
