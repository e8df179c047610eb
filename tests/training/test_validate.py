"""Held-out validation: the plain codec scored once, an NPP at the identity not coded again."""

from __future__ import annotations

from pathlib import Path

import torch

from shared.codecs.bpg.codec import BpgCodec
from shared.tasks import get_task
from training.train.config import DataConfig
from training.train.data import TrainImages
from training.train.validate import Validator


def test_an_identity_prefilter_reuses_the_plain_scores_and_a_change_is_coded(data_dir: Path) -> None:
    held = TrainImages(DataConfig(first=200, count=4, holdout_count=3, crop=48), 0, (25, 44)).holdout()
    v = Validator(held.x, held.ids, [28, 40], BpgCodec(level=8), {"efficientnet_lite0": get_task("efficientnet_lite0")},
                  bootstrap=10)
    # below half a grey level: the codec is given the same 8-bit frames
    same = v.run(lambda x, _q: x + 0.4 / 255)
    assert same.npp is v.plain and same.bd_kl["efficientnet_lite0"].estimate.value == 0.0

    def darker(x: torch.Tensor, q: int) -> torch.Tensor:
        out = x.clone()
        out[-1] = out[-1] * 0.5  # one picture of the last chunk changes
        return out

    changed = v.run(darker)
    assert changed.npp is not v.plain
    assert changed.npp.bits[:, -1].sum() != v.plain.bits[:, -1].sum()
    assert (changed.npp.bits[:, :-1] == v.plain.bits[:, :-1]).all()  # the codec is deterministic
