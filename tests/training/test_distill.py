"""Distillation: per-image optimised targets, their files, and an NPP trained to reproduce them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch

from shared.codecs.bpg.codec import BpgCodec
from shared.conditioning import conditioning_value
from shared.paths import repo_root
from shared.tasks import get_task
from training.proxy.model import BpgProxy
from training.proxy.real_codec import StraightThroughCodec
from training.train.config import ConfigError, TrainConfig, load_config, resolve_path
from training.train.distill import TargetError, TargetImages, _settings, make_targets, shard_path, target_statistics
from training.train.loop import CHECKPOINT, LOG, CheckpointError, load_checkpoint, train
from training.train.loss import LambdaTable, RDLoss

SMOKE = repo_root() / "configs" / "training" / "smoke.yaml"


def _config(tmp_path: Path, **distill: object) -> TrainConfig:
    base = load_config(SMOKE, {"out": str(tmp_path / "run")})
    return TrainConfig.model_validate({
        **base.model_dump(),
        "distill": {"targets": str(tmp_path / "targets"), "steps": 4, "lr": 3e-3, "shard": 2, **distill},
        "data": {**base.data.model_dump(), "count": 4, "resize": 40, "crop": 32},
    })


def _write_shard(cfg: TrainConfig, k: int, x: torch.Tensor, y: torch.Tensor, q: list[int]) -> None:
    assert cfg.distill is not None
    buf = io.BytesIO()
    torch.save({"format": "prepicm.distill/1", "settings": _settings(cfg, cfg.distill),
                "ids": [f"img{k}_{i}.png" for i in range(len(q))], "quality": torch.tensor(q), "x": x,
                "y": y.half()}, buf)
    path = shard_path(resolve_path(cfg.distill.targets), k)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def test_targets_are_optimised_pictures_that_the_real_codec_scores_better(tmp_path: Path, data_dir: Path) -> None:
    cfg = _config(tmp_path)
    paths = make_targets(cfg, 3, workers=1, log=False)
    assert [p.name for p in paths] == ["shard_00000.pt", "shard_00001.pt"]
    shards = [torch.load(p, weights_only=True) for p in paths]
    assert [len(s["ids"]) for s in shards] == [2, 1]
    x = torch.cat([s["x"] for s in shards]).float() / 255
    y = torch.cat([s["y"] for s in shards]).float()
    q = torch.cat([s["quality"] for s in shards])
    assert x.shape == y.shape == (3, 3, 40, 40) and int(q.min()) >= 25 and int(q.max()) <= 44
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0 and float((y - x).abs().max()) > 1 / 255
    # the loss the targets were optimised for, scored with the real codec alone
    task = get_task(cfg.task)
    loss_fn = RDLoss(task, LambdaTable.from_sweep(resolve_path(cfg.lambda_points), "kl"), beta=0.5)
    st = StraightThroughCodec(BpgProxy(), BpgCodec(level=cfg.codec_level))
    with torch.no_grad():
        target = loss_fn.target(x)
        before = loss_fn(x, x, st(x, q), q, target)["total_per_image"]
        after = loss_fn(x, y, st(y, q), q, target)["total_per_image"]
    assert float(after.sum()) < float(before.sum())
    # a second call keeps the shards it finds; other settings are refused, not mixed in
    stamp = paths[0].stat().st_mtime_ns
    make_targets(cfg, 3, workers=1, log=False)
    assert paths[0].stat().st_mtime_ns == stamp
    with pytest.raises(TargetError, match="other settings"):
        make_targets(_config(tmp_path, lr=1e-3), 3, workers=1, log=False)
    with pytest.raises(TargetError, match="other settings"):
        TargetImages(_config(tmp_path, steps=5))


def test_target_batches_crop_and_flip_picture_and_target_alike(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    g = torch.Generator().manual_seed(0)
    for k in range(2):
        x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8, generator=g)
        _write_shard(cfg, k, x, 1.0 - x.float() / 255, [26 + k, 40 - k])
    data = TargetImages(cfg)
    assert len(data) == 4
    flips: set[bool] = set()
    for step in range(6):
        batch, goal = data.batch(step, 3)
        assert batch.x.shape == goal.shape == (3, 3, 32, 32)
        torch.testing.assert_close(goal, 1.0 - batch.x, atol=1e-3, rtol=0)  # fp16 targets
        again, goal2 = TargetImages(cfg).batch(step, 3)
        assert torch.equal(again.x, batch.x) and torch.equal(goal2, goal) and again.ids == batch.ids
        for i, name in enumerate(batch.ids):
            k, j = (int(v) for v in name[3:-4].split("_"))
            assert int(batch.quality[i]) == [26 + k, 40 - k][j]
            whole = data.x[data.ids.index(name)].float() / 255
            found = {flip for top in range(9) for left in range(9) for flip in (False, True)
                     if torch.equal(batch.x[i], (lambda c, f: c.flip(-1) if f else c)(
                         whole[:, top : top + 32, left : left + 32], flip))}
            assert found, f"batch {step} picture {i} is no crop of {name}"
            flips |= found
    assert flips == {False, True}
    with pytest.raises(TargetError, match="holds 4 target pictures"):
        TargetImages(_config(tmp_path, images=5))
    assert len(TargetImages(_config(tmp_path, images=3))) == 3
    with pytest.raises(TargetError, match="no target shards"):
        TargetImages(_config(tmp_path, targets=str(tmp_path / "none")))


def test_distillation_learns_the_targets_and_resumes_exactly(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(30, 226, (4, 3, 40, 40), dtype=torch.uint8, generator=g)
    _write_shard(cfg, 0, x, x.float() / 255 * 0.8, [30, 30, 38, 38])  # a target the NPP can learn: darker

    def run(out: str, steps: int) -> None:
        train(TrainConfig.model_validate({**cfg.model_dump(), "out": str(tmp_path / out), "steps": steps,
                                          "lr": 1e-2, "checkpoint_every": 1}))

    run("a", 30)
    rows = list(csv.DictReader((tmp_path / "a" / LOG).open()))
    first, last = rows[0], rows[-1]
    assert float(first["plain_total"]) == pytest.approx(float(first["total"]), rel=0.2)  # starts at the identity
    assert float(last["total"]) < 0.5 * float(last["plain_total"])
    assert last["rate_bpp"] == "nan"  # no codec ran
    run("b", 2)
    run("c", 1)
    run("c", 2)
    a, b = load_checkpoint(tmp_path / "b" / CHECKPOINT), load_checkpoint(tmp_path / "c" / CHECKPOINT)
    for k, v in a["npp"].items():
        assert torch.equal(v, b["npp"][k]), k


def test_a_cosine_schedule_decays_to_zero_resumes_exactly_and_binds_the_run_to_its_length(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    x = torch.randint(30, 226, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    _write_shard(cfg, 0, x, x.float() / 255 * 0.8, [30, 30, 38, 38])

    def config(out: str, steps: int, schedule: str = "cosine") -> TrainConfig:
        return TrainConfig.model_validate({**cfg.model_dump(), "out": str(tmp_path / out), "steps": steps,
                                           "lr": 1e-2, "lr_schedule": schedule, "checkpoint_every": 1})

    four = config("a", 4)
    assert [four.lr_at(s) for s in (0, 2, 4)] == pytest.approx([1e-2, 5e-3, 0.0])
    assert config("k", 4, "constant").lr_at(3) == 1e-2
    train(four)
    logged = [float(r["lr"]) for r in csv.DictReader((tmp_path / "a" / LOG).open())]
    assert logged == pytest.approx([four.lr_at(s) for s in range(4)])
    # the length shapes the schedule, so it is part of the identity (with a constant rate it is not)
    assert config("a", 5).identity() != four.identity()
    assert config("k", 5, "constant").identity() == config("k", 4, "constant").identity()
    with pytest.raises(CheckpointError, match="different configuration"):
        train(config("a", 5))
    # interrupted after 2 of its 4 steps (a checkpoint every step), then resumed: the same weights
    class Interrupted(Exception):
        pass

    def stop_at_2(step: int, _row: object) -> None:
        if step == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config("b", 4), on_step=stop_at_2)
    train(config("b", 4))
    a, b = load_checkpoint(tmp_path / "a" / CHECKPOINT), load_checkpoint(tmp_path / "b" / CHECKPOINT)
    for k, v in a["npp"].items():
        assert torch.equal(v, b["npp"][k]), k


def test_target_statistics_say_how_much_of_the_change_a_filter_could_express(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    x = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    _write_shard(cfg, 0, x, 1.0 - x.float() / 255, [30] * 4)  # the negative: all detail, no low-pass
    stats = target_statistics(TargetImages(cfg))
    assert stats["pictures"] == 4
    assert stats["share of the change below a 9x9 low-pass"] < 0.1
    assert stats["correlation of the change with the picture's detail"] < -0.9


def test_detail_gain_targets_change_only_what_the_classifier_reads(tmp_path: Path, data_dir: Path) -> None:
    cfg = _config(tmp_path, form="detail_gain", scale=8, window=True, steps=2, lr=0.1)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"resize": 64})})
    (path,) = make_targets(cfg, 2, workers=1, log=False)
    blob = torch.load(path, weights_only=True)
    assert blob["settings"]["form"] == "DetailGain(scale=8, sigma=1.5)" and blob["settings"]["window"] is True
    x, y = blob["x"].float() / 255, blob["y"].float()
    lo, hi = get_task(cfg.task).preprocess.read_window(64)  # type: ignore[attr-defined]
    assert (lo, hi) == (2, 62)
    frame = torch.ones(64, 64, dtype=torch.bool)
    frame[lo:hi, lo:hi] = False
    assert float((y - x)[..., frame].abs().max()) <= 1e-3  # fp16 storage
    assert float((y - x)[..., ~frame].abs().max()) > 1 / 255
    # pixel targets made before these options existed keep their settings, so they still load
    assert cfg.distill is not None
    assert "form" not in _settings(cfg, cfg.distill.model_copy(update={"form": "pixels", "window": False}))


def test_an_unknown_form_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="detail_gain"):
        load_config(SMOKE, {"distill": {"targets": str(tmp_path), "form": "wavelets"}})


def test_reproduced_share_is_zero_for_the_identity_and_one_for_the_network_that_made_the_targets(
        tmp_path: Path) -> None:
    from training.npp import build_npp
    from training.train.distill import reproduced_share
    from training.train.loop import identity_init

    cfg = _config(tmp_path)
    torch.manual_seed(0)
    npp = build_npp("gain_qa")
    with torch.no_grad():
        npp.out.weight.normal_(std=0.05)  # type: ignore[union-attr, operator]
    x = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    q = [28, 32, 36, 40]
    with torch.no_grad():
        cond = torch.tensor([[conditioning_value("bpg", v)] for v in q])
        y = npp.eval()(x.float() / 255, cond)["x_bar"]
    _write_shard(cfg, 0, x, y, q)
    data = TargetImages(cfg)
    assert reproduced_share(data, npp) == pytest.approx(1.0, abs=1e-3)  # y is stored in half precision
    assert reproduced_share(data, identity_init(build_npp("gain_qa"))) == pytest.approx(0.0, abs=1e-6)


def test_proxy_forward_targets_never_run_the_codec_and_are_kept_apart(tmp_path: Path, data_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The "proxy only" ablation: targets optimised through the proxy in the forward pass too."""
    cfg = _config(tmp_path).model_copy(update={"codec_forward": "proxy"})

    def no_codec(*_a: object, **_k: object) -> bytes:
        raise AssertionError("the real codec ran")

    monkeypatch.setattr(BpgCodec, "encode", no_codec)
    (path,) = make_targets(cfg, 1, workers=1, log=False)
    blob = torch.load(path, weights_only=True)
    assert blob["settings"]["codec_forward"] == "proxy"
    assert float((blob["y"].float() - blob["x"].float() / 255).abs().max()) > 1 / 255
    # real-codec targets never mix with them, and their settings are what they always were
    with pytest.raises(TargetError, match="other settings"):
        TargetImages(_config(tmp_path))
    assert "codec_forward" not in _settings(_config(tmp_path), _config(tmp_path).distill)  # type: ignore[arg-type]


def test_mirrored_targets_optimise_the_mirror_image_and_the_run_learns_the_mean_of_both_views(
        tmp_path: Path, data_dir: Path) -> None:
    from training.train.distill import _form, _region, target_sets
    from training.train.pixel_forms import optimise_pixels

    cfg = _config(tmp_path, form="detail_gain", scale=8, window=True, steps=2, lr=0.1,
                  mirrored_targets=str(tmp_path / "mirrored")).model_copy(update={"codec_forward": "proxy"})
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"resize": 48})})
    own, mirrored = make_targets(cfg, 2, workers=1, log=False)
    assert (own.parent.name, mirrored.parent.name) == ("targets", "mirrored")
    a, b = (torch.load(p, weights_only=True) for p in (own, mirrored))
    assert b["settings"] == {**a["settings"], "view": "mirrored"} and "view" not in a["settings"]
    assert a["ids"] == b["ids"] and torch.equal(a["x"], b["x"]) and torch.equal(a["quality"], b["quality"])
    # the mirrored view is the optimum of the mirror image, mirrored back: not the picture's own optimum
    assert cfg.distill is not None
    x = a["x"].float() / 255
    st = StraightThroughCodec(BpgProxy(), BpgCodec(level=cfg.codec_level), mode="proxy")
    loss_fn = RDLoss(get_task(cfg.task), LambdaTable.from_sweep(resolve_path(cfg.lambda_points), "kl"), beta=0.5)
    region = _region(get_task(cfg.task), (48, 48)).flip(-1)
    direct = optimise_pixels(x.flip(-1), a["quality"], st, loss_fn, 2, 0.1, _form(cfg.distill), region).flip(-1)
    assert float((b["y"].float() - direct).abs().max()) <= 2e-3  # fp16 storage
    assert float((b["y"].float() - a["y"].float()).abs().max()) > 1 / 255
    # training regresses onto the mean of the two views
    data = TargetImages(cfg)
    assert float((data.y.float() - (a["y"].float() + b["y"].float()) / 2).abs().max()) <= 1e-3
    assert [folder.name for folder, _, _ in target_sets(cfg)] == ["targets", "mirrored"]
    # map shapes: the identity keeps every cell alike, so it has no shape to share with the targets
    from training.npp import build_npp
    from training.train.distill import shape_agreement
    from training.train.loop import identity_init

    shapes = shape_agreement(cfg, identity_init(build_npp("gain_qa")))
    assert set(shapes) == {"network", "saliency", "views"} and shapes["network"] == 0.0
    assert all(-1.0 <= r <= 1.0 for r in shapes.values()) and shapes["views"] != 0.0


def test_mirrored_targets_must_be_another_folder_and_hold_the_same_pictures(tmp_path: Path) -> None:
    same = _config(tmp_path, mirrored_targets=str(tmp_path / "targets"))
    with pytest.raises(ConfigError, match="another folder"):
        TargetImages(same)
    cfg = _config(tmp_path, mirrored_targets=str(tmp_path / "mirrored"))
    x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    _write_shard(cfg, 0, x, x.float() / 255, [30, 31])
    with pytest.raises(TargetError, match="no target shards"):
        TargetImages(cfg)
    assert cfg.distill is not None
    other = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"targets": str(tmp_path / "mirrored")})})
    blob = {"format": "prepicm.distill/1", "settings": {**_settings(cfg, cfg.distill), "view": "mirrored"},
            "ids": ["img0_0.png", "img0_1.png"], "quality": torch.tensor([30, 32]), "x": x, "y": x.half() / 255}
    path = shard_path(resolve_path(other.distill.targets), 0)  # type: ignore[union-attr]
    path.parent.mkdir(parents=True)
    torch.save(blob, path)
    with pytest.raises(TargetError, match="different pictures"):
        TargetImages(cfg)


def test_an_l1_regression_learns_the_targets_logs_its_own_penalty_and_is_another_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, loss="l1")
    x = torch.randint(30, 226, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(6))
    _write_shard(cfg, 0, x, x.float() / 255 * 0.8, [30, 30, 38, 38])
    train(TrainConfig.model_validate({**cfg.model_dump(), "steps": 30, "lr": 1e-2}))
    rows = list(csv.DictReader((tmp_path / "run" / LOG).open()))
    batch, goal = TargetImages(cfg).batch(0, cfg.batch_size)
    assert float(rows[0]["plain_total"]) == pytest.approx(float((batch.x - goal).abs().mean()), rel=1e-5)
    assert float(rows[-1]["total"]) < 0.5 * float(rows[-1]["plain_total"])
    assert cfg.distill is not None
    mse = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"loss": "mse"})})
    assert mse.identity() != cfg.identity()
    with pytest.raises(ConfigError, match="loss"):
        load_config(SMOKE, {"distill": {"targets": str(tmp_path), "loss": "huber"}})


def test_a_shape_term_joins_the_regression_and_is_another_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, shape_weight=0.5).model_copy(update={"npp": "gain_qa"})  # starts exactly at X̄ = X
    x = torch.randint(30, 226, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    _write_shard(cfg, 0, x, x.float() / 255 * 0.8, [30, 30, 38, 38])
    train(TrainConfig.model_validate({**cfg.model_dump(), "steps": 1}))
    rows = list(csv.DictReader((tmp_path / "run" / LOG).open()))
    batch, goal = TargetImages(cfg).batch(0, cfg.batch_size)
    from training.train.map_shape import shape_loss

    # at the identity: the pixel term, and the shape term of an unchanged picture against the targets
    expected = float(((batch.x - goal) ** 2).mean() + 0.5 * shape_loss(batch.x, batch.x, goal))
    assert float(rows[0]["total"]) == pytest.approx(expected, rel=1e-4)
    assert float(rows[0]["plain_total"]) == pytest.approx(expected, rel=1e-4)  # the identity's, the same objective
    assert cfg.distill is not None
    plain = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"shape_weight": 0.0})})
    assert plain.identity() != cfg.identity()


def test_an_overblur_weight_costs_changing_a_pixel_more_than_the_target_does(tmp_path: Path) -> None:
    from training.train.loop import _distill_step

    cfg = _config(tmp_path, overblur_weight=3.0)
    x = torch.full((1, 3, 8, 8), 0.5)
    goal = x - 0.1

    class Fixed(torch.nn.Module):  # a network whose output is given
        def __init__(self, y: torch.Tensor) -> None:
            super().__init__()
            self.y = torch.nn.Parameter(y.clone())

        def forward(self, _x: torch.Tensor, _cond: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"x_bar": self.y}

    totals = [float(_distill_step(cfg, Fixed(y), x, torch.zeros(1, 1), torch.tensor([30]), goal)[0])
              for y in (x - 0.2, x)]  # as far from the target, once beyond it and once short of it
    assert totals[0] == pytest.approx(3 * totals[1]) and totals[1] == pytest.approx(0.01)
    assert cfg.distill is not None
    even = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"overblur_weight": 1.0})})
    assert even.identity() != cfg.identity() and even.identity() == _config(tmp_path).identity()


def test_levels_say_how_much_of_each_picture_s_overall_blur_q_and_the_network_explain(tmp_path: Path) -> None:
    from training.npp import build_npp
    from training.npp.gain import blur, gaussian_kernel
    from training.train.distill import level_agreement

    cfg = _config(tmp_path, form="detail_gain", scale=8, sigma=1.5)
    x = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    q = [26, 44, 30, 38, 34, 42]
    # each target keeps a share of the picture's detail that grows with q: its level is q's alone
    level = torch.tensor([0.2 + 0.03 * (v - 26) for v in q]).view(-1, 1, 1, 1)
    xf = x.float() / 255
    low = blur(xf, gaussian_kernel(1.5))
    _write_shard(cfg, 0, x, low + level * (xf - low), q)
    npp = build_npp("gain_qa")
    with torch.no_grad():
        npp.out.weight.normal_(std=0.05, generator=torch.Generator().manual_seed(1))  # type: ignore[union-attr, operator]
    got = level_agreement(cfg, npp)
    assert set(got) == {"network", "q", "q + network", "q + certainty"}
    assert got["q"] == pytest.approx(1.0, abs=1e-3)  # fp16 storage of the targets
    assert got["q + network"] >= got["q"] - 1e-9 and got["q + certainty"] >= got["q"] - 1e-9
    assert -1.0 <= got["network"] <= 1.0
    with pytest.raises(ConfigError, match="detail_gain"):
        level_agreement(_config(tmp_path), npp)
