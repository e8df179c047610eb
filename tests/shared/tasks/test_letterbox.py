from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.tasks.letterbox import LetterboxGeometry, letterbox_image, letterbox_tensor

SHAPES = [(480, 640), (640, 480), (427, 640), (333, 500), (1000, 37), (640, 640), (120, 90)]


@pytest.mark.parametrize("h,w", SHAPES)
def test_boxes_round_trip_to_original_coordinates(h: int, w: int) -> None:
    geo = LetterboxGeometry.fit(h, w, 640)
    boxes = np.array([[0, 0, w, h], [w * 0.1, h * 0.2, w * 0.5, h * 0.9], [w / 3, h / 3, w / 3 + 1, h / 3 + 1]])
    lb = geo.to_letterbox(boxes)
    # the whole image lands exactly on the un-padded region of the letterbox
    np.testing.assert_allclose(lb[0], [geo.left, geo.top, geo.left + w * geo.scale, geo.top + h * geo.scale], atol=1e-3)
    assert lb.min() >= 0 and lb.max() <= 640 + 1e-3
    np.testing.assert_allclose(geo.from_letterbox(lb), boxes, atol=1e-3)


def test_inverse_clips_to_image() -> None:
    geo = LetterboxGeometry.fit(480, 640, 640)  # 80 px grey bands at top and bottom
    assert (geo.top, geo.left, geo.new_h, geo.new_w) == (80, 0, 480, 640)
    np.testing.assert_allclose(geo.from_letterbox(np.array([[-5, 10, 700, 630]])), [[0, 0, 640, 480]])


@pytest.mark.parametrize("h,w", SHAPES[:4])
def test_matches_yolov5_package(h: int, w: int) -> None:
    """Same pixels as the package's letterbox, and boxes within 0.5 px of its scale_boxes."""
    from shared.tasks.yolov5n import _import_yolov5

    _import_yolov5()  # imports the package with its deprecation warnings silenced
    from yolov5.utils.augmentations import letterbox
    from yolov5.utils.general import scale_boxes

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ours, geo = letterbox_image(img, 640)
    theirs, _, _ = letterbox(img, 640, auto=False)
    np.testing.assert_array_equal(ours, theirs)
    lb_boxes = np.array([[100.0, 120.0, 300.0, 400.0], [0.0, 0.0, 640.0, 640.0]])
    ref = scale_boxes((640, 640), torch.tensor(lb_boxes), (h, w)).numpy()
    np.testing.assert_allclose(geo.from_letterbox(lb_boxes), ref, atol=0.5 / geo.scale + 1e-3)


def test_tensor_letterbox_matches_image_letterbox() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    ref, geo = letterbox_image(img, 640)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    out, geo_t = letterbox_tensor(x, 640)
    assert geo_t == geo and out.shape == (1, 3, 640, 640)
    diff = (out[0].permute(1, 2, 0).numpy() * 255 - ref).__abs__()
    assert diff.mean() < 2.0  # same geometry and padding; bilinear kernels differ slightly
