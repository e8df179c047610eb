"""The rate–distortion loss: λ at the plain codec's slope, every term by name, label-free KL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.tasks import get_task
from training.train.loss import LambdaTable, LossConfigError, RatePoint, RDLoss, codec_slopes, read_sweep_points

POINTS = [RatePoint(22, 2.0, 0.02), RatePoint(27, 1.2, 0.06), RatePoint(32, 0.7, 0.16), RatePoint(37, 0.4, 0.40)]


def test_slopes_are_minus_delta_rate_over_delta_distortion() -> None:
    slopes = dict(codec_slopes(POINTS))
    assert slopes[22] == pytest.approx(0.8 / 0.04)  # one-sided at the ends
    assert slopes[27] == pytest.approx(1.3 / 0.14)  # central inside
    assert slopes[37] == pytest.approx(0.3 / 0.24)
    line = [RatePoint(q, 3.0 - 5.0 * d, d) for q, d in ((20, 0.1), (30, 0.2), (40, 0.5))]
    assert [s for _, s in codec_slopes(line)] == pytest.approx([5.0, 5.0, 5.0])


def test_non_monotone_points_are_refused() -> None:
    with pytest.raises(LossConfigError, match="rate must fall"):
        codec_slopes([RatePoint(22, 2.0, 0.05), RatePoint(27, 1.0, 0.04)])
    with pytest.raises(LossConfigError, match="at least 2"):
        codec_slopes(POINTS[:1])


def test_table_interpolates_log_linearly_and_clamps() -> None:
    t = LambdaTable.from_points(POINTS, "kl", "test")
    q = torch.tensor([22.0, 27.0, 24.5, 10.0, 50.0])
    lam = t.lam(q)
    s = dict(codec_slopes(POINTS))
    assert lam[:2].tolist() == pytest.approx([s[22], s[27]], rel=1e-6)
    assert float(lam[2]) == pytest.approx(float(np.sqrt(s[22] * s[27])), rel=1e-5)
    assert float(lam[3]) == pytest.approx(s[22], rel=1e-6) and float(lam[4]) == pytest.approx(s[37], rel=1e-6)
    assert t.reference_bpp(torch.tensor([32.0])).item() == pytest.approx(0.7, rel=1e-6)


def test_reads_sweep_points(tmp_path: Path) -> None:
    doc = {"format": "prepicm.sweep/1", "points": [
        {"codec": "bpg", "preprocessing": "none", "quality": p.quality, "bpp": p.bpp, "kl": p.distortion, "ce": 1.0}
        for p in POINTS] + [{"codec": "jpeg", "preprocessing": "none", "quality": 50, "bpp": 1.0, "kl": 0.1}]}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(doc))
    assert read_sweep_points(path, "kl") == POINTS
    assert LambdaTable.from_sweep(path).qualities == (22, 27, 32, 37)
    with pytest.raises(LossConfigError, match="no vvc points"):
        read_sweep_points(path, "kl", codec="vvc")


def test_committed_lambda_points_give_a_table() -> None:
    from shared.paths import repo_root

    t = LambdaTable.from_sweep(repo_root() / "configs/training/bpg_efficientnet_lite0_points.json", "kl")
    assert t.qualities[0] <= 25 and t.qualities[-1] >= 44
    assert list(t.lambdas) == sorted(t.lambdas, reverse=True)  # bits are cheaper to trade at high q


@pytest.fixture(scope="module")
def task():  # type: ignore[no-untyped-def]
    return get_task("efficientnet_lite0")


def test_terms_by_name_and_their_sum(task, kodak_image: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    x = torch.from_numpy(np.ascontiguousarray(kodak_image[:64, :64])).permute(2, 0, 1)[None].float() / 255
    x = torch.cat([x, x.flip(-1)])
    x_bar = (x * 0.8 + 0.1).requires_grad_(True)
    coded = {"x_hat": x_bar * 0.95, "bpp": torch.tensor([0.9, 0.3]) + 0 * x_bar.mean()}
    table = LambdaTable.from_points(POINTS, "kl", "test")
    loss = RDLoss(task, table, beta=0.5)
    q = torch.tensor([27, 37])
    target = loss.target(x)
    terms = loss(x, x_bar, coded, q, target)
    assert {"total", "rate_bpp", "distortion", "distortion_kl", "pixel_mse", "lambda"} <= set(terms)
    d = terms["distortion_per_image"]
    pix = ((x_bar - x) ** 2).flatten(1).mean(1)
    expected = (coded["bpp"] + table.lam(q) * d + 0.5 * pix) / table.reference_bpp(q)
    torch.testing.assert_close(terms["total"], expected.mean())
    assert terms["rate_bpp"].item() == pytest.approx(0.6)
    terms["total"].backward()
    assert x_bar.grad is not None and x_bar.grad.abs().sum() > 0
    # the pristine image's KL to itself is zero: the label-free target is the model's own prediction
    same = loss(x, x, {"x_hat": x, "bpp": torch.zeros(2)}, q, target)
    assert float(same["distortion"]) == pytest.approx(0.0, abs=1e-5)


def test_cross_entropy_needs_labels(task) -> None:  # type: ignore[no-untyped-def]
    table = LambdaTable.from_points(POINTS, "ce", "test")
    loss = RDLoss(task, table, distortion="ce", normalise=False)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(LossConfigError, match="needs labels"):
        loss.target(x)
    terms = loss(x, x, {"x_hat": x, "bpp": torch.ones(2)}, torch.tensor([22, 22]), loss.target(x, torch.tensor([1, 2])))
    assert terms["distortion_ce"] > 0
    with pytest.raises(LossConfigError, match="measured on 'ce'"):
        RDLoss(task, table, distortion="kl")
