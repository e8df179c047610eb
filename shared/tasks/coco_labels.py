"""COCO category ids and names, and the 80-class contiguous index used by YOLO-style detectors."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def coco91_names() -> tuple[str, ...]:
    """Names indexed by COCO category id 0..90 ('__background__' at 0, 'N/A' for unused ids)."""
    from torchvision.models._meta import _COCO_CATEGORIES

    return tuple(_COCO_CATEGORIES)


@lru_cache(maxsize=1)
def coco80_category_ids() -> tuple[int, ...]:
    """The 80 COCO category ids in ascending order: contiguous class i ↔ the i-th smallest id."""
    return tuple(i for i, n in enumerate(coco91_names()) if n not in ("__background__", "N/A"))


def coco80_names() -> tuple[str, ...]:
    names = coco91_names()
    return tuple(names[i] for i in coco80_category_ids())
