"""The training loop: seeded batches, a checkpoint that resumes to the identical state, CSV logs, CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shared.paths import repo_root
from training.npp import build_npp
from training.train.config import ConfigError, DataConfig, load_config
from training.train.data import DataError, TrainImages
from training.train.loop import CHECKPOINT, LOG, CheckpointError, identity_init, load_checkpoint, train

SMOKE = repo_root() / "configs" / "training" / "smoke.yaml"


def test_batches_depend_only_on_seed_and_step(data_dir: Path) -> None:
    cfg = DataConfig(first=200, count=8, holdout_count=2, crop=32)
    a, b = TrainImages(cfg, 3, (25, 44)), TrainImages(cfg, 3, (25, 44))
    b.batch(0, 4)  # history must not matter
    for step in (5, 1):
        x, y = a.batch(step, 4), b.batch(step, 4)
        assert torch.equal(x.x, y.x) and torch.equal(x.quality, y.quality) and x.ids == y.ids
    assert not torch.equal(a.batch(0, 4).x, a.batch(1, 4).x)
    qs = torch.cat([a.batch(s, 4).quality for s in range(30)])
    assert int(qs.min()) >= 25 and int(qs.max()) <= 44 and len(set(qs.tolist())) > 10
    with pytest.raises(DataError, match="held-out"):
        TrainImages(DataConfig(first=0, count=8, holdout_first=4, holdout_count=2), 0, (25, 44))


def _state(out: Path) -> dict:
    return load_checkpoint(out / CHECKPOINT)


def test_checkpoint_resumes_to_the_identical_state(tmp_path: Path, data_dir: Path) -> None:
    straight = load_config(SMOKE, {"out": str(tmp_path / "a"), "steps": 2})
    train(straight)
    first = load_config(SMOKE, {"out": str(tmp_path / "b"), "steps": 1})
    train(first)
    assert _state(tmp_path / "b")["step"] == 1
    ran: list[int] = []
    train(load_config(SMOKE, {"out": str(tmp_path / "b"), "steps": 2}), on_step=lambda s, _row: ran.append(s))
    assert ran == [2]  # it resumed from the checkpoint instead of starting over
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert a["step"] == b["step"] == 2 and a["identity"] == b["identity"]
    for k, v in a["npp"].items():
        assert torch.equal(v, b["npp"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(sa[k][name]), torch.as_tensor(sb[k][name]))
    rows_a = list(csv.DictReader((tmp_path / "a" / LOG).open()))
    rows_b = list(csv.DictReader((tmp_path / "b" / LOG).open()))
    assert [r["step"] for r in rows_b] == ["1", "2"]
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert {k: ra[k] for k in ("total", "rate_bpp", "distortion", "pixel_mse")} == \
               {k: rb[k] for k in ("total", "rate_bpp", "distortion", "pixel_mse")}
    # the rate in the log is the real codec's: a positive bpp, the proxy's beside it
    assert float(rows_a[0]["rate_bpp"]) > 0 and float(rows_a[0]["proxy_bpp"]) > 0
    # a checkpoint never resumes under another configuration
    with pytest.raises(CheckpointError, match="different configuration"):
        train(load_config(SMOKE, {"out": str(tmp_path / "a"), "steps": 3, "lr": 1e-3}))


def test_config_errors_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("npp: not_a_variant\n")
    with pytest.raises(ConfigError, match="not_a_variant"):
        load_config(bad)
    bad.write_text("qp_min: 40\nqp_max: 30\n")
    with pytest.raises(ConfigError, match="qp_min"):
        load_config(bad)
    bad.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        load_config(bad)


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: 0\n")
    r = subprocess.run([sys.executable, "-m", "training.train", "--config", str(bad), "--no-progress"],
                       capture_output=True, text=True, cwd=repo_root(), timeout=120, check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and "batch_size" in r.stderr


@pytest.mark.parametrize("variant", ["test_tiny", "lite_qa", "lite_qa_signed"])
def test_identity_init_starts_at_the_identity(variant: str) -> None:
    npp = identity_init(build_npp(variant)).train()
    x = torch.rand(2, 3, 48, 40) * 0.99
    out = npp(x, torch.tensor([[25 / 51], [44 / 51]]))["x_bar"]
    assert float((out - x).detach().abs().max()) <= 1.01e-3
    opt = torch.optim.SGD(npp.parameters(), lr=1e-2)
    ((out - 0.5) ** 2).sum().backward()
    assert npp.head[2].weight.grad.abs().sum() > 0  # type: ignore[index, union-attr]  # the head learns at once
    opt.step()
    opt.zero_grad()
    ((npp(x, torch.tensor([[0.5], [0.9]]))["x_bar"] - 0.5) ** 2).sum().backward()
    assert npp.down1.body[0][0].weight.grad.abs().sum() > 0  # type: ignore[index, union-attr]  # then the U-Net


def test_a_signed_head_can_darken_where_the_papers_cannot() -> None:
    x = torch.rand(1, 3, 32, 32) * 0.5 + 0.25
    cond = torch.tensor([[0.6]])
    outs = {}
    for variant in ("lite_qa", "lite_qa_signed"):
        npp = identity_init(build_npp(variant)).eval()
        with torch.no_grad():
            npp.head[2].bias.fill_(-0.1)  # type: ignore[index, union-attr]
            outs[variant] = npp(x, cond)["x_bar"]
    assert torch.allclose(outs["lite_qa"], x, atol=1e-6)  # the ReLU swallows the negative residual
    assert torch.allclose(outs["lite_qa_signed"], x - 0.1, atol=1e-6)


def test_logging_the_plain_codec_leaves_the_trajectory_alone(tmp_path: Path, data_dir: Path) -> None:
    train(load_config(SMOKE, {"out": str(tmp_path / "a"), "steps": 2}))
    train(load_config(SMOKE, {"out": str(tmp_path / "b"), "steps": 1}))
    # resumed with the plain codec logged (not part of the run's identity): the old log gains the column
    train(load_config(SMOKE, {"out": str(tmp_path / "b"), "steps": 2, "log_plain": True}))
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    for k, v in a["npp"].items():
        assert torch.equal(v, b["npp"][k]), k
    rows = list(csv.DictReader((tmp_path / "b" / LOG).open()))
    assert [r["step"] for r in rows] == ["1", "2"] and rows[0]["plain_total"] in ("", "nan")
    plain, total = float(rows[1]["plain_total"]), float(rows[1]["total"])
    # the NPP starts near the identity, so on the same batch its loss is the plain codec's, nearly
    assert plain > 0 and abs(total - plain) < 0.25 * plain


def test_validation_logs_bd_rates_and_keeps_the_best_for_export(tmp_path: Path, data_dir: Path) -> None:
    from training.export.artifact import load_checkpoint as load_for_export
    from training.train.loop import BEST, VALIDATION_LOG

    over = {"out": str(tmp_path / "v"), "steps": 2, "validate_every": 1, "validate_qualities": [28, 40],
            "validate_tasks": [], "validate_bootstrap": 10}
    cfg = load_config(SMOKE, over)
    # validation settings never change the trajectory, so they may change between resumes
    assert cfg.identity() == load_config(SMOKE, {"out": "elsewhere"}).identity()
    train(cfg)
    rows = list(csv.DictReader((tmp_path / "v" / VALIDATION_LOG).open()))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    for r in rows:  # both curves were coded by the real codec: positive rates that fall with q
        assert float(r["plain_bpp_q28"]) > float(r["plain_bpp_q40"]) > 0
        assert float(r["bpp_q28"]) > float(r["bpp_q40"]) > 0
        assert "bd_kl_efficientnet_lite0" in r and "bd_agree_efficientnet_lite0" in r
    npp = build_npp("test_tiny")
    meta = load_for_export(npp, "test_tiny", tmp_path / "v" / BEST)
    assert meta["step"] in (0, 1, 2) and meta["qps"][0] == 25 and meta["trained_codecs"] == ["bpg"]
    # the run's own checkpoint.pt exports too: its weights, its step, its validation row
    meta = load_for_export(npp, "test_tiny", tmp_path / "v" / CHECKPOINT)
    assert meta["run_id"] == "smoke@2" and meta["step"] == 2
    assert meta["metrics"]["bd_kl_efficientnet_lite0"] == float(rows[-1]["bd_kl_efficientnet_lite0"])
    ck = load_checkpoint(tmp_path / "v" / CHECKPOINT)
    for k, v in npp.state_dict().items():
        assert torch.equal(v, ck["npp"][k]), k
    # resuming keeps the rows up to the checkpoint and appends
    train(load_config(SMOKE, {**over, "steps": 3}))
    assert [r["step"] for r in csv.DictReader((tmp_path / "v" / VALIDATION_LOG).open())] == ["0", "1", "2", "3"]


def test_init_from_another_run_starts_from_its_weights(tmp_path: Path, data_dir: Path) -> None:
    train(load_config(SMOKE, {"out": str(tmp_path / "a"), "steps": 1, "lr": 1e-2}))
    first = tmp_path / "a" / CHECKPOINT
    # a second stage with another loss; lr ≈ 0 so its weights after one step are where it started
    stage2 = load_config(SMOKE, {"out": str(tmp_path / "b"), "steps": 1, "init_from": str(first), "beta": 5.0,
                                 "lr": 1e-12})
    assert stage2.identity() != load_config(SMOKE, {"beta": 5.0, "lr": 1e-12}).identity()
    train(stage2)
    start, after = _state(tmp_path / "a")["npp"], _state(tmp_path / "b")["npp"]
    fresh = identity_init(build_npp("test_tiny"))
    params = [name for name, _ in fresh.named_parameters()]  # BatchNorm statistics move in any step
    assert all(torch.allclose(start[k], after[k], atol=1e-6) for k in params)
    assert any(not torch.allclose(fresh.state_dict()[k], after[k], atol=1e-4) for k in params)
    other = tmp_path / "other.pt"
    torch.save({"npp_variant": "lite_qa", "npp": {}}, other)
    with pytest.raises(CheckpointError, match="variant"):
        train(load_config(SMOKE, {"out": str(tmp_path / "c"), "init_from": str(other)}))


def test_a_checkpoint_names_its_own_variant_and_a_named_one_must_match(tmp_path: Path) -> None:
    from training.train.loop import npp_from_checkpoint

    npp = build_npp("gain_qa")
    path = tmp_path / "best.pt"
    torch.save({"variant": "gain_qa", "state_dict": npp.state_dict()}, path)
    loaded = npp_from_checkpoint(path)  # no variant given: the checkpoint's own
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in npp.state_dict().items())
    assert type(npp_from_checkpoint(path, "gain_qa")) is type(npp)
    with pytest.raises(CheckpointError, match="variant 'gain_qa'"):
        npp_from_checkpoint(path, "test_tiny")
    for blob, match in (({"variant": "no_such_net", "state_dict": {}}, "no_such_net"),
                        ({"state_dict": {}}, "variant None")):
        torch.save(blob, path)
        with pytest.raises(CheckpointError, match=match):
            npp_from_checkpoint(path)


def test_frozen_batchnorm_trains_the_network_that_is_exported(tmp_path: Path, data_dir: Path) -> None:
    from training.train.loop import set_train_mode

    train(load_config(SMOKE, {"out": str(tmp_path / "f"), "steps": 1, "batchnorm": "frozen"}))
    train(load_config(SMOKE, {"out": str(tmp_path / "b"), "steps": 1}))
    frozen, batch = _state(tmp_path / "f")["npp"], _state(tmp_path / "b")["npp"]
    stats = [k for k in frozen if k.endswith("running_mean")]
    assert stats and all(torch.equal(frozen[k], torch.zeros_like(frozen[k])) for k in stats)  # never updated
    assert any(not torch.equal(batch[k], torch.zeros_like(batch[k])) for k in stats)
    assert not torch.equal(frozen["head.2.weight"], batch["head.2.weight"])  # both learnt, differently
    npp = build_npp("test_tiny")
    set_train_mode(npp, "frozen")
    assert npp.training and not npp.down1.body[0][1].training  # type: ignore[index, union-attr]


def test_resize_squashes_whole_pictures_before_the_crop(data_dir: Path) -> None:
    from training.train.data import load_picture

    native = DataConfig(first=200, count=4, holdout_count=2, crop=32)
    squashed = DataConfig(first=200, count=4, holdout_count=2, crop=32, resize=40)
    path = TrainImages(native, 0, (25, 44)).holdout_files[0]
    assert load_picture(path, 32, 40).shape == (40, 40, 3)
    assert load_picture(path, 32).shape[:2] != (40, 40)
    a, b = TrainImages(native, 0, (25, 44)).holdout(), TrainImages(squashed, 0, (25, 44)).holdout()
    assert a.x.shape == b.x.shape == (2, 3, 32, 32) and not torch.equal(a.x, b.x)
    # a field added later leaves older runs' identity alone at its old value, and changes it otherwise
    base = load_config(SMOKE)
    assert base.identity() == load_config(SMOKE, {"data": {**base.data.model_dump(), "resize": None}}).identity()
    assert base.identity() != load_config(SMOKE, {"data": {**base.data.model_dump(), "resize": 64}}).identity()


def test_accumulated_micro_batches_take_the_step_of_their_mean(tmp_path: Path, data_dir: Path) -> None:
    # whole 32×32 pictures, no flip, one q: a micro-batch's content depends only on which images it holds
    fixed = {"data": {"first": 200, "count": 2, "holdout_count": 2, "crop": 32, "resize": 32, "hflip": False},
             "qp_min": 30, "qp_max": 30, "steps": 1, "batchnorm": "frozen", "log_plain": True}
    train(load_config(SMOKE, {**fixed, "out": str(tmp_path / "one"), "batch_size": 2}))
    acc = load_config(SMOKE, {**fixed, "out": str(tmp_path / "acc"), "batch_size": 1, "accumulate": 2})
    assert acc.identity() != load_config(SMOKE, {**fixed, "batch_size": 1}).identity()
    assert load_config(SMOKE, {"accumulate": 1}).identity() == load_config(SMOKE).identity()  # older runs resume
    train(acc)
    one, two = _state(tmp_path / "one"), _state(tmp_path / "acc")
    assert two["step"] == 1  # optimiser steps, not micro-batches
    grads_one = [s["exp_avg"] for s in one["optimizer"]["state"].values()]
    grads_two = [s["exp_avg"] for s in two["optimizer"]["state"].values()]
    scale = max(float(g.abs().max()) for g in grads_one)
    assert scale > 0
    for g1, g2 in zip(grads_one, grads_two, strict=True):  # Adam's first moment after one step: 0.1 × gradient
        assert torch.allclose(g1, g2, rtol=1e-3, atol=1e-5 * scale)
    row_one = next(csv.DictReader((tmp_path / "one" / LOG).open()))
    row_two = next(csv.DictReader((tmp_path / "acc" / LOG).open()))
    for k in ("total", "rate_bpp", "distortion", "plain_total"):  # the log holds the micro-batches' mean
        assert float(row_two[k]) == pytest.approx(float(row_one[k]), rel=1e-4), k
