from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shared.imageio import read_rgb
from shared.tasks import DetectionOutput, get_task


def test_mtcnn_finds_a_face_and_distills(data_dir: Path) -> None:
    # kodim18: a face near (266, 175)-(312, 241); a 256 px crop around it keeps this quick
    rgb = read_rgb(data_dir / "kodak" / "kodim18.png")[96:352, 160:416]
    model = get_task("mtcnn")
    (out,) = model.predict_detection([rgb])
    assert isinstance(out, DetectionOutput) and out.kind == "faces"
    assert len(out) >= 1 and out.scores.max() > 0.9 and out.names[0] == "face"
    assert out.keypoints is not None and out.keypoints.shape == (len(out), 5, 2)
    h, w = rgb.shape[:2]
    assert (out.boxes >= 0).all() and (out.boxes[:, [0, 2]] <= w).all() and (out.boxes[:, [1, 3]] <= h).all()
    (blank,) = model.predict_detection([np.full((64, 64, 3), 128, np.uint8)])
    assert len(blank) == 0

    pristine = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    target = model.distill_target(pristine)
    assert float(model.loss(pristine, target)["loss"]) == pytest.approx(0, abs=1e-4)
    x = (pristine + 0.1 * torch.randn_like(pristine)).clamp(0, 1).requires_grad_()
    terms = model.loss(x, target)
    assert terms["onet"] > 0 and terms["pnet"] > 0
    terms["loss"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
