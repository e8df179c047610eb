"""Distillation targets: pixels optimised per image, for an NPP to learn by regression.

Per-image pixel optimisation against the training loss (real codec forward — or the proxy's, with
``codec_forward: proxy`` — proxy backward, λ at the codec's slope) moves the rate–accuracy curve a
long way — the headroom probe measures −35% at equal KL on a backbone it never saw
(docs/training.md) — while an NPP trained end to end on the same loss has not moved it: its
gradient is one small step shared by every picture. Here the two are split.
:func:`optimise_pixels` finds each training picture's optimised version X* at one q (drawn per
picture), once, offline; the NPP then learns X ≈ NPP(X, q) → X* by pixel regression
(``distill`` in a run's config), a low-noise supervised problem that needs neither the codec nor
the task model per step. Regression also keeps only what is predictable from the picture: the
per-image adversarial part of X*, which no network can predict, averages out.

``python -m training.train.distill --config configs/training/<run>.yaml [--images N]`` writes the
targets in shards of ``shard`` pictures (``<targets>/shard_00000.pt`` …, atomically; existing
shards are kept, so the command resumes). Which pictures and which q each one gets depend only
on the config's seed and data range.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

from shared.atomic import atomic_write_bytes
from shared.codecs.bpg.codec import BpgCodec
from shared.pipeline import EncoderPool
from shared.tasks import TaskModel, get_task
from shared.tasks.classifiers import ImageClassifier
from training.proxy.model import BpgProxy
from training.proxy.real_codec import StraightThroughCodec
from training.train.config import ConfigError, DistillConfig, TrainConfig, load_config, resolve_path
from training.train.data import Batch, DataError, TrainImages, bpg_conditioning, epoch_index, load_picture
from training.train.loss import LambdaTable, RDLoss
from training.train.pixel_forms import DetailGain, PictureForm, make_form, optimise_pixels, window_mask

FORMAT = "prepicm.distill/1"


class TargetError(ValueError):
    """A target folder that is missing, empty or was made for other settings."""


def target_quality(seed: int, index: int, qp_range: tuple[int, int]) -> int:
    """The bpgenc q training picture ``index`` is optimised at."""
    return int(np.random.default_rng([seed, index, 3]).integers(qp_range[0], qp_range[1] + 1))


def _settings(cfg: TrainConfig, d: DistillConfig) -> dict[str, object]:
    return {"task": cfg.task, "lambda_points": cfg.lambda_points, "distortion": cfg.distortion,
            "normalise_rate": cfg.normalise_rate, "quantiser": cfg.quantiser, "codec_level": cfg.codec_level,
            "qp": [cfg.qp_min, cfg.qp_max], "seed": cfg.seed, "folder": cfg.data.folder, "first": cfg.data.first,
            "resize": cfg.data.resize, "steps": d.steps, "lr": d.lr, "beta": d.beta, "shard": d.shard,
            # added later: only where they differ from what older targets were made with
            **({"form": repr(_form(d)), "window": d.window} if d.form != "pixels" or d.window else {}),
            **({"codec_forward": cfg.codec_forward} if cfg.codec_forward != "real" else {})}


def target_sets(cfg: TrainConfig) -> list[tuple[Path, dict[str, object], bool]]:
    """Each target folder of ``cfg`` with the settings its shards must carry and whether its
    pictures are optimised mirrored: the targets, then the mirrored targets if configured."""
    d = cfg.distill
    if d is None:
        raise ConfigError(f"{cfg.name}: no `distill` section, so no targets")
    settings = _settings(cfg, d)
    sets = [(resolve_path(d.targets), settings, False)]
    if d.mirrored_targets is not None:
        mirrored = resolve_path(d.mirrored_targets)
        if mirrored == sets[0][0]:
            raise ConfigError("distill.mirrored_targets must be another folder than distill.targets")
        sets.append((mirrored, {**settings, "view": "mirrored"}, True))
    return sets


def _form(d: DistillConfig) -> PictureForm:
    return make_form(d.form, d.scale, d.sigma)


def _read_window(task: TaskModel, size: tuple[int, int]) -> tuple[int, int]:
    """[lo, hi) of the rows (and columns) of a picture of ``size`` that the task model reads."""
    pre = getattr(task, "preprocess", None)
    if pre is None or not hasattr(pre, "read_window") or size[0] != size[1]:
        raise ConfigError("distill.window needs square pictures (data.resize) and a classifier task model")
    lo, hi = pre.read_window(size[0])
    return int(lo), int(hi)


def _region(task: TaskModel, size: tuple[int, int]) -> torch.Tensor:
    """1 where the task model reads a picture of ``size``, 0 on the frame it never reads."""
    return window_mask(size, *_read_window(task, size))


def shard_path(folder: Path, k: int) -> Path:
    return folder / f"shard_{k:05d}.pt"


def make_targets(cfg: TrainConfig, images: int | None = None, *, workers: int = 2, log: bool = True) -> list[Path]:
    """Optimise the first ``images`` training pictures (all with None; whole, at the config's
    resize) and write them shard by shard, into each target folder (:func:`target_sets`); returns
    every shard path. Shards already there are checked and kept."""
    d = cfg.distill
    sets = target_sets(cfg)
    assert d is not None
    data = TrainImages(cfg.data, cfg.seed, (cfg.qp_min, cfg.qp_max))
    files = data.train_files[:images]
    task = get_task(cfg.task)
    lambdas = LambdaTable.from_sweep(resolve_path(cfg.lambda_points), cfg.distortion)
    loss_fn = RDLoss(task, lambdas, beta=d.beta, distortion=cfg.distortion, normalise=cfg.normalise_rate)
    proxy = BpgProxy(resolve_path(cfg.proxy_params) if cfg.proxy_params else None, quantiser=cfg.quantiser)
    paths = []
    t0 = time.perf_counter()
    with EncoderPool(workers=workers) as pool:
        # `proxy`: the proxy in the forward pass too, the paper's "proxy only" ablation
        st = StraightThroughCodec(proxy, BpgCodec(level=cfg.codec_level), pool=pool, mode=cfg.codec_forward)
        for folder, settings, mirrored in sets:
            folder.mkdir(parents=True, exist_ok=True)
            for k, lo in enumerate(range(0, len(files), d.shard)):
                path = shard_path(folder, k)
                paths.append(path)
                if path.is_file():
                    _check(torch.load(path, map_location="cpu", weights_only=True), settings, path)
                    continue
                chunk = files[lo : lo + d.shard]
                # whole pictures: the crop is applied when the NPP trains, the same to X and X*
                rgb = [load_picture(f, cfg.data.crop, cfg.data.resize) for f in chunk]
                if len({a.shape for a in rgb}) != 1:
                    raise DataError("distillation targets need pictures of one size: set data.resize")
                x = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).contiguous()
                q = torch.tensor([target_quality(cfg.seed, lo + i, (cfg.qp_min, cfg.qp_max))
                                  for i in range(len(chunk))])
                torch.manual_seed(cfg.seed * 1_000_003 + lo)  # the noise quantiser, if configured
                region = _region(task, (x.shape[-2], x.shape[-1])) if d.window else None
                view = x.flip(-1) if mirrored else x
                if region is not None and mirrored:
                    region = region.flip(-1)
                y = optimise_pixels(view.float() / 255.0, q, st, loss_fn, d.steps, d.lr, _form(d), region)
                y = y.flip(-1) if mirrored else y
                buf = io.BytesIO()
                torch.save({"format": FORMAT, "settings": settings, "ids": [f.name for f in chunk], "quality": q,
                            "x": x, "y": y.half()}, buf)
                atomic_write_bytes(path, buf.getvalue())
                if log:
                    print(f"{folder.name}/{path.name}: {lo + len(chunk)}/{len(files)} pictures, "
                          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return paths


def _check(blob: object, settings: dict[str, object], path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise TargetError(f"{path} is not a {FORMAT} target shard")
    if blob["settings"] != settings:
        raise TargetError(f"{path} was made with other settings ({blob['settings']}); this config wants {settings}")
    return blob


class TargetImages:
    """(X, X*, q) training triples from a target folder, batched deterministically like
    :class:`training.train.data.TrainImages`: the batch of index s depends only on (seed, s), with
    the same random crop and flip applied to X and X*."""

    def __init__(self, cfg: TrainConfig) -> None:
        d = cfg.distill
        if d is None:
            raise ConfigError(f"{cfg.name}: no `distill` section")
        loaded = [_load_set(folder, settings, d.images) for folder, settings, _ in target_sets(cfg)]
        self.ids, self.quality, self.x, _ = loaded[0]
        for ids, quality, x, _ in loaded[1:]:
            if ids != self.ids or not torch.equal(quality, self.quality) or not torch.equal(x, self.x):
                raise TargetError(f"{resolve_path(d.targets)} and {d.mirrored_targets} hold different pictures")
        #: each target folder's X*, in the order of :func:`target_sets`
        self.views = tuple(view for *_, view in loaded)
        # what the run learns: the mean of the views (float for the sum, half again as stored)
        self.y = (self.views[0] if len(self.views) == 1
                  else ((self.views[0].float() + self.views[1].float()) / 2).half())
        self.seed, self.crop, self.hflip = cfg.seed, cfg.data.crop, cfg.data.hflip

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, step: int, batch_size: int) -> tuple[Batch, torch.Tensor]:
        """The batch of index ``step`` and its targets X* (same crops and flips)."""
        n, crop = len(self), self.crop
        h, w = self.x.shape[-2:]
        rng = np.random.default_rng([self.seed, step, 4])
        xs, ys, qs, ids = [], [], [], []
        for k in range(batch_size):
            i = epoch_index(self.seed, step * batch_size + k, n, stream=5)
            top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            x = self.x[i, :, top : top + crop, left : left + crop].float() / 255.0
            y = self.y[i, :, top : top + crop, left : left + crop].float()
            if self.hflip and rng.random() < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            xs.append(x)
            ys.append(y)
            qs.append(self.quality[i])
            ids.append(self.ids[i])
        return Batch(torch.stack(xs), torch.stack(qs), tuple(ids)), torch.stack(ys)


def _load_set(folder: Path, settings: dict[str, object],
              images: int | None) -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor, torch.Tensor]:
    paths = sorted(folder.glob("shard_*.pt")) if folder.is_dir() else []
    if not paths:
        raise TargetError(f"no target shards in {folder}; make them with "
                          f"python -m training.train.distill --config <this config>")
    shards = [_check(torch.load(p, map_location="cpu", weights_only=True), settings, p) for p in paths]
    held = sum(len(s["ids"]) for s in shards)
    n = held if images is None else images
    if held < n:
        raise TargetError(f"{folder} holds {held} target pictures, the config trains on {n}")
    ids = tuple(i for s in shards for i in s["ids"])[:n]
    return (ids, torch.cat([s["quality"] for s in shards])[:n], torch.cat([s["x"] for s in shards])[:n],
            torch.cat([s["y"] for s in shards])[:n])


def target_statistics(data: TargetImages, blur: int = 9) -> dict[str, float]:
    """How far the optimised pictures are from the originals, and how much of the change a filter
    of the picture could express: the share of its energy below a ``blur``×``blur`` box low-pass,
    and its correlation with the picture's own detail (the picture minus that low-pass)."""
    kernel = torch.ones(3, 1, blur, blur) / blur**2
    pad = (blur // 2,) * 4

    def low(v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.pad(v, pad, mode="replicate"), kernel, groups=3)

    sums = dict.fromkeys(("rr", "ll", "rd", "dd"), 0.0)
    count = 0
    for lo in range(0, len(data), 16):
        x = data.x[lo : lo + 16].float() / 255.0
        r = data.y[lo : lo + 16].float() - x
        d = x - low(x)
        sums["rr"] += float((r * r).sum())
        sums["ll"] += float(low(r).pow(2).sum())
        sums["rd"] += float((r * d).sum())
        sums["dd"] += float((d * d).sum())
        count += r.numel()
    mse = sums["rr"] / count
    return {"pictures": float(len(data)), "PSNR of target to picture (dB)": -10 * float(np.log10(mse)),
            "RMS change": mse**0.5, f"share of the change below a {blur}x{blur} low-pass": sums["ll"] / sums["rr"],
            "correlation of the change with the picture's detail": sums["rd"] / (sums["rr"] * sums["dd"]) ** 0.5}


def reproduced_share(data: TargetImages, npp: torch.nn.Module, chunk: int = 25) -> float:
    """1 − ‖NPP(X, q) − X*‖² / ‖X − X*‖² over the target pictures, whole (no crops): the share of
    the targets' change from the pictures that the network reproduces (0 for the identity)."""
    err = change = 0.0
    npp.eval()
    with torch.no_grad():
        for lo in range(0, len(data), chunk):
            x, y = data.x[lo : lo + chunk].float() / 255.0, data.y[lo : lo + chunk].float()
            cond = bpg_conditioning(data.quality[lo : lo + chunk])
            err += float((npp(x, cond)["x_bar"] - y).pow(2).sum())
            change += float((x - y).pow(2).sum())
    return 1.0 - err / change


def _gain_maps(cfg: TrainConfig, what: str) -> tuple[DistillConfig, TargetImages, TaskModel, slice]:
    """What reading detail-gain targets needs: the distill settings, the targets, the task model and
    the cells of the maps to read (those inside the classifier's window, with ``window``)."""
    from training.train.map_shape import window_cells

    d = cfg.distill
    if d is None or d.form != "detail_gain":
        raise ConfigError(f"{what} need detail_gain targets")
    data = TargetImages(cfg)
    task = get_task(cfg.task)
    size = (data.x.shape[-2], data.x.shape[-1])
    return d, data, task, window_cells(*(_read_window(task, size) if d.window else (0, size[-1])), d.scale)


def shape_agreement(cfg: TrainConfig, npp: torch.nn.Module, chunk: int = 16) -> dict[str, float]:
    """How alike in shape (:mod:`training.train.map_shape`) the targets' detail-gain maps are to
    this network's, to the task model's first-order saliency, and — with mirrored targets — to the
    other view's: the median over the target pictures of the per-picture correlation."""
    from training.train.map_shape import cell_gains, saliency_gains, shape_correlation

    d, data, task, cells = _gain_maps(cfg, "map shapes")
    form = _form(d)
    assert isinstance(form, DetailGain)
    views = data.views
    rows: dict[str, list[torch.Tensor]] = {"network": [], "saliency": [], "views": []}
    npp.eval()
    for i in range(0, len(data), chunk):
        x, q = data.x[i : i + chunk].float() / 255.0, data.quality[i : i + chunk]
        target = cell_gains(x, data.y[i : i + chunk].float(), d.sigma, d.scale)
        with torch.no_grad():
            mine = cell_gains(x, npp(x, bpg_conditioning(q))["x_bar"], d.sigma, d.scale)
        rows["network"].append(shape_correlation(mine, target, cells))
        rows["saliency"].append(shape_correlation(saliency_gains(task, x, form), target, cells))
        if len(views) == 2:
            own, other = (cell_gains(x, v[i : i + chunk].float(), d.sigma, d.scale) for v in views)
            rows["views"].append(shape_correlation(own, other, cells))
    return {k: float(torch.cat(v).median()) for k, v in rows.items() if v}


def _explained(y: torch.Tensor, *columns: torch.Tensor) -> float:
    """R² of the least-squares fit of ``y`` on ``columns`` and a constant."""
    x = torch.stack([torch.ones_like(y), *columns], 1).double()
    fit = x @ torch.linalg.lstsq(x, y.double().unsqueeze(1)).solution
    return float(1.0 - (y.double() - fit.squeeze(1)).var() / y.double().var())


def level_agreement(cfg: TrainConfig, npp: torch.nn.Module, chunk: int = 16) -> dict[str, float]:
    """How well each picture's overall level of blur — its mean cell gain over the read window, the
    part :func:`shape_agreement` removes — is predicted: the correlation over the target pictures
    of this network's level with the targets', and the share of the targets' level (R² of a
    linear fit) explained by q alone, by q and the network's level, and by q and how sure the
    task model is of the picture (:class:`shared.tasks.classifiers.Certainty`)."""
    from training.train.map_shape import cell_gains

    d, data, task, cells = _gain_maps(cfg, "levels")
    if not isinstance(task, ImageClassifier):
        raise ConfigError(f"levels need a classifier task model, not {cfg.task}")
    sure = task.certainty()
    target, mine, certainty = [], [], []
    npp.eval()
    for i in range(0, len(data), chunk):
        x, q = data.x[i : i + chunk].float() / 255.0, data.quality[i : i + chunk]
        target.append(cell_gains(x, data.y[i : i + chunk].float(), d.sigma, d.scale)[..., cells, cells].mean((1, 2, 3)))
        with torch.no_grad():
            out = npp(x, bpg_conditioning(q))["x_bar"]
            certainty.append(sure(x))
        mine.append(cell_gains(x, out, d.sigma, d.scale)[..., cells, cells].mean((1, 2, 3)))
    t, n, c, q = torch.cat(target), torch.cat(mine), torch.cat(certainty), data.quality.float()
    return {"network": float(torch.corrcoef(torch.stack([t, n]))[0, 1]), "q": _explained(t, q),
            "q + network": _explained(t, q, n), "q + certainty": _explained(t, q, *c.unbind(1))}


def _network(checkpoint: Path) -> torch.nn.Module:
    from training.train.loop import CheckpointError, npp_from_checkpoint

    try:
        return npp_from_checkpoint(checkpoint)  # any variant: the targets judge networks of every kind
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train.distill",
                                 description="Make the per-image optimised targets a distillation run learns from")
    ap.add_argument("--config", type=Path, required=True, help="a training config with a `distill` section")
    ap.add_argument("--images", type=int, default=None, help="the first N training pictures (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="real-codec worker processes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--stats", action="store_true", help="print what the existing targets are, make none")
    ap.add_argument("--reproduced", type=Path, metavar="CHECKPOINT",
                    help="print the share of the targets' change that a run's network (its checkpoint.pt or "
                         "best.pt, of any NPP variant) reproduces, make none")
    ap.add_argument("--shape", type=Path, metavar="CHECKPOINT",
                    help="print how alike in shape (where detail is kept) this network's maps and the targets' "
                         "are, beside the task model's saliency and the two mirror views; make none")
    ap.add_argument("--level", type=Path, metavar="CHECKPOINT",
                    help="print how well this network's overall level of blur per picture follows the targets', "
                         "and how much of the targets' level q and the task model's certainty explain; make none")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config)
        if args.images is not None and args.images < 1:
            raise ConfigError("--images must be ≥ 1")
        if args.stats:
            for name, value in target_statistics(TargetImages(cfg)).items():
                print(f"| {name} | {value:.4g} |")
            return 0
        if args.reproduced is not None:
            print(f"| share of the targets' change reproduced by {args.reproduced} | "
                  f"{reproduced_share(TargetImages(cfg), _network(args.reproduced)):.4f} |")
            return 0
        if args.shape is not None:
            names = {"network": f"the network {args.shape}",
                     "saliency": f"{cfg.task}'s first-order saliency, abs(∂ log p_top / ∂g)",
                     "views": "the mirrored view's targets (the picture's own view against the mirror's)"}
            print("| the targets' map shape (median per-picture correlation) against | r |\n|---|---|")
            for key, r in shape_agreement(cfg, _network(args.shape)).items():
                print(f"| {names[key]} | {r:.3f} |")
            return 0
        if args.level is not None:
            names = {"network": f"correlation with the network {args.level}'s level",
                     "q": "R² explained by q", "q + network": "R² explained by q and the network's level",
                     "q + certainty": f"R² explained by q and {cfg.task}'s certainty (entropy, top, margin)"}
            print("| the targets' level of blur (mean gain per picture) | |\n|---|---|")
            for key, r in level_agreement(cfg, _network(args.level)).items():
                print(f"| {names[key]} | {r:.3f} |")
            return 0
        paths = make_targets(cfg, args.images, workers=args.workers)
    except (ConfigError, DataError, TargetError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(paths)} shards in {', '.join(str(folder) for folder, _, _ in target_sets(cfg))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
