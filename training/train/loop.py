"""The NPP training loop: real codec forward, proxy backward, seeded and resumable.

One step: the batch of step s (training.train.data: depends only on seed and s), a bpgenc q per
image drawn uniformly from [qp_min, qp_max], the QA conditioning ``shared.conditioning`` gives for
it, X̄ = NPP(X, cond), the straight-through codec (real BPG in an EncoderPool forward, the proxy
backward; or the proxy alone), the rate–distortion loss against the frozen task model, one Adam
step — over ``accumulate`` micro-batches whose gradients are averaged first. The torch RNG (noise
quantiser) is reseeded from (seed, micro-batch index) for every micro-batch.

Checkpoints (``<out>/checkpoint.pt``, written atomically every ``checkpoint_every`` steps and at
the end) hold the NPP, the optimiser, the step, the accumulated time and the config identity;
resuming from one continues exactly as if the run had not stopped (tests check bit-identity).
Logs: ``<out>/log.csv``, one row per ``log_every`` steps (rows past a checkpoint that a crash
left behind are dropped on resume). With ``validate_every`` the held-out images are coded by the
real codec with and without the NPP every that many steps (:mod:`training.train.validate`); the
BD-rates go to ``<out>/validation.csv`` and the best NPP by BD-rate at equal KL on the training
task to ``<out>/best.pt`` (weights and provenance, what ``training.export --checkpoint`` reads).
With a ``distill`` section the loss is instead the pixel regression onto per-image optimised
targets (:mod:`training.train.distill`); everything else — batches, checkpoints, validation with
the real codec — is the same. With ``tensorboard: true`` the same scalars also go to
``<out>/tb`` (needs the ``tensorboard`` package, which the project does not require).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch

from shared.atomic import atomic_write_bytes, atomic_write_text
from shared.codecs.bpg.codec import BpgCodec
from shared.pipeline import EncoderPool
from shared.registry import RegistryError
from shared.tasks import get_task
from training.npp import NppModule, build_npp
from training.proxy.model import BpgProxy
from training.proxy.real_codec import StraightThroughCodec
from training.train.config import TrainConfig, resolve_path
from training.train.data import TrainImages, bpg_conditioning
from training.train.distill import TargetImages
from training.train.distributed import Distributed, setup
from training.train.loss import LambdaTable, RDLoss
from training.train.map_shape import shape_loss
from training.train.validate import held_out_validator, npp_prefilter

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
LOG = "log.csv"
VALIDATION_LOG = "validation.csv"
FORMAT = "prepicm.train/1"
LOG_FIELDS = ("step", "wall_s", "cpu_s", "total", "rate_bpp", "distortion", "pixel_mse", "lambda",
              "proxy_bpp", "q_mean", "lr", "plain_total")


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this configuration, or is not one."""


@dataclass
class TrainState:
    step: int
    wall_s: float
    cpu_s: float


def _cpu_seconds() -> float:
    """CPU seconds of this process and its live children (the encoder pool's workers)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return float(total)


def save_checkpoint(path: Path, cfg: TrainConfig, npp: torch.nn.Module, opt: torch.optim.Optimizer,
                    state: TrainState) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "identity": cfg.identity(), "config": cfg.model_dump(), "npp_variant": cfg.npp,
                "step": state.step, "wall_s": state.wall_s, "cpu_s": state.cpu_s, "npp": npp.state_dict(),
                "optimizer": opt.state_dict()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, cfg: TrainConfig | None = None) -> dict[str, Any]:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable training checkpoint: {exc}") from exc
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    if cfg is not None and ck["identity"] != cfg.identity():
        raise CheckpointError(f"{path} was written by a different configuration (identity {ck['identity']}, "
                              f"this one {cfg.identity()}); use another out folder")
    return ck


def _truncate_log(path: Path, step: int, fields: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """Drop rows past ``step`` (a crash after the last checkpoint); returns the rows kept.

    With ``fields`` the file is rewritten with those columns (a log from an older version gains
    the new ones, empty), so rows appended after the resume line up with the header."""
    if not path.is_file():
        return []
    with path.open() as f:
        reader = csv.DictReader(f)
        columns = list(fields or reader.fieldnames or LOG_FIELDS)
        rows = [r for r in reader if int(r["step"]) <= step]
    out = io.StringIO()
    w = csv.DictWriter(out, columns, restval="", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, out.getvalue())
    return rows


def identity_init(npp: NppModule) -> NppModule:
    """Start the NPP at (nearly) the identity (each architecture's ``reset_to_identity``).

    An untrained NPP at PyTorch's default init outputs noise (pixel MSE ≈ 0.26 and KL ≈ 5 nats
    to the pristine prediction on ImageNet crops), so training would first spend its budget
    relearning the identity; starting there, every step works on the rate–accuracy trade."""
    npp.reset_to_identity()
    return npp


def set_train_mode(model: torch.nn.Module, batchnorm: str) -> None:
    """Train mode, with batch-norm layers on their running statistics when ``batchnorm`` is "frozen"
    (their affine weights still learn)."""
    model.train()
    if batchnorm == "frozen":
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _npp_weights(path: Path, variant: str | None) -> tuple[str, dict[str, torch.Tensor]]:
    """The NPP variant and weights of a training checkpoint (``npp``) or a best.pt / export checkpoint
    (``state_dict``); with ``variant`` given, the checkpoint must hold that one."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint: {exc}") from exc
    got = blob.get("npp_variant", blob.get("variant")) if isinstance(blob, dict) else None
    if not isinstance(got, str) or (variant is not None and got != variant):
        raise CheckpointError(f"{path}: holds NPP variant {got!r}, this run trains {variant!r}")
    state = blob.get("npp", blob.get("state_dict"))
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no NPP weights in it")
    return got, state


def npp_from_checkpoint(path: Path, variant: str | None = None) -> NppModule:
    """A network with the weights of a run's checkpoint.pt or best.pt: of the variant the checkpoint
    names, which must be ``variant`` when that is given."""
    got, state = _npp_weights(path, variant)
    try:
        npp = build_npp(got)
    except RegistryError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    npp.load_state_dict(state)
    return npp


def _seed_step(seed: int, step: int, rank: int = 0) -> None:
    torch.manual_seed((seed * 1_000_003 + step + rank * 2**40) % (2**63))


def train(cfg: TrainConfig, *, resume: bool = True, progress: bool = False,
          on_step: Callable[[int, dict[str, float]], None] | None = None,
          dist: Distributed | None = None) -> TrainState:
    """Run (or continue) a training run up to ``cfg.steps``; returns the final state.

    Under ``torchrun`` pass the :func:`training.train.distributed.setup` result (else this process
    joins the group itself and leaves it at the end)."""
    own_group = dist is None
    ctx = setup(cfg.device, cfg.batch_size) if dist is None else dist
    try:
        return _train(cfg, ctx, resume=resume, progress=progress and ctx.is_main, on_step=on_step)
    finally:
        if own_group:
            ctx.close()


def _train(cfg: TrainConfig, ctx: Distributed, *, resume: bool, progress: bool,
           on_step: Callable[[int, dict[str, float]], None] | None) -> TrainState:
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out, device = cfg.out_dir(), ctx.device
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.init_from is not None:
        npp = npp_from_checkpoint(resolve_path(cfg.init_from), cfg.npp)
    else:
        npp = build_npp(cfg.npp)
        if cfg.init == "identity":
            identity_init(npp)
    npp.to(device)
    opt = torch.optim.Adam(npp.parameters(), lr=cfg.lr)
    state = TrainState(0, 0.0, 0.0)
    ckpt_path, log_path = out / CHECKPOINT, out / LOG
    ctx.barrier()  # every process sees the same checkpoint (or none)
    validated: list[dict[str, str]] = []
    if resume and ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path, cfg)
        npp.load_state_dict(ck["npp"])
        opt.load_state_dict(ck["optimizer"])
        state = TrainState(int(ck["step"]), float(ck["wall_s"]), float(ck["cpu_s"]))
        if ctx.is_main:
            _truncate_log(log_path, state.step, LOG_FIELDS)
            validated = _truncate_log(out / VALIDATION_LOG, state.step)
    elif ctx.is_main:
        for stale in (log_path, out / VALIDATION_LOG, out / BEST):
            stale.unlink(missing_ok=True)
    if ctx.is_main:
        atomic_write_text(out / "config.json", cfg.model_dump_json(indent=1) + "\n")
    model = ctx.wrap(npp)  # after loading: DDP broadcasts rank 0's weights once more

    task = get_task(cfg.task, device=device)
    proxy = BpgProxy(resolve_path(cfg.proxy_params) if cfg.proxy_params else None, quantiser=cfg.quantiser)
    proxy.to(device)
    lambdas = LambdaTable.from_sweep(resolve_path(cfg.lambda_points), cfg.distortion)
    loss_fn = RDLoss(task, lambdas, beta=cfg.beta, distortion=cfg.distortion, normalise=cfg.normalise_rate)
    data = TrainImages(cfg.data, cfg.seed, (cfg.qp_min, cfg.qp_max))
    source: TrainImages | TargetImages = TargetImages(cfg) if cfg.distill is not None else data
    rows = ctx.rows(cfg.batch_size)
    tb = _tensorboard(out / "tb") if cfg.tensorboard and ctx.is_main else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=state.step, desc=cfg.name, unit="step")
    pool_cm = EncoderPool(workers=cfg.encode_workers) if cfg.codec_forward == "real" else contextlib.nullcontext()
    log_cm = log_path.open("a", newline="") if ctx.is_main else contextlib.nullcontext()
    with pool_cm as pool, log_cm as log_file:
        writer = csv.DictWriter(log_file, LOG_FIELDS) if log_file is not None else None
        if log_file is not None and writer is not None and log_file.tell() == 0:
            writer.writeheader()
        st = StraightThroughCodec(proxy, BpgCodec(level=cfg.codec_level), pool=pool, mode=cfg.codec_forward)
        validation = _Validation(cfg, data, task, pool, validated) if cfg.validate_every and ctx.is_main else None
        if validation is not None and not validated:  # where the run starts from: the reference row
            validation.run(npp, state)
        ctx.barrier()
        t_wall, t_cpu = time.perf_counter(), _cpu_seconds()
        base_wall, base_cpu = state.wall_s, state.cpu_s
        while state.step < cfg.steps:
            set_train_mode(model, cfg.batchnorm)
            for group in opt.param_groups:  # a function of the step alone: a resumed run follows it too
                group["lr"] = cfg.lr_at(state.step)
            opt.zero_grad(set_to_none=True)
            micro = [_micro_step(cfg, ctx, model, st, loss_fn, source, rows, state.step * cfg.accumulate + k,
                                 sync=k == cfg.accumulate - 1)
                     for k in range(cfg.accumulate)]
            opt.step()
            state.step += 1
            state.wall_s = base_wall + time.perf_counter() - t_wall
            state.cpu_s = base_cpu + _cpu_seconds() - t_cpu  # this process's (× processes for the run)
            logged = ctx.mean(torch.stack(micro).mean(0))
            row = {"step": state.step, "wall_s": round(state.wall_s, 3), "cpu_s": round(state.cpu_s, 3),
                   **{k: float(v) for k, v in zip((*_TERMS, "proxy_bpp", "q_mean", "plain_total"), logged.tolist(),
                                                  strict=True)},
                   "lr": opt.param_groups[0]["lr"]}
            last = state.step == cfg.steps
            validate_now = bool(cfg.validate_every) and (state.step % cfg.validate_every == 0 or last)
            if log_file is not None and writer is not None and (state.step % cfg.log_every == 0 or last):
                writer.writerow(row)
                log_file.flush()
                if tb is not None:
                    for k in LOG_FIELDS[3:]:
                        tb.add_scalar(k, row[k], state.step)
            if ctx.is_main and (state.step % cfg.checkpoint_every == 0 or last):
                save_checkpoint(ckpt_path, cfg, npp, opt, state)
            if validate_now:
                if validation is not None:
                    validation.run(npp, state)
                ctx.barrier()  # the others wait while rank 0 validates
            if on_step is not None:
                on_step(state.step, row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['total']:.4f}", bpp=f"{row['rate_bpp']:.3f}")
    if bar is not None:
        bar.close()
    if tb is not None:
        tb.close()
    ctx.barrier()
    return state


_TERMS = ("total", "rate_bpp", "distortion", "pixel_mse", "lambda")


def _micro_step(cfg: TrainConfig, ctx: Distributed, model: torch.nn.Module, st: StraightThroughCodec,
                loss_fn: RDLoss, data: TrainImages | TargetImages, rows: slice, index: int, *,
                sync: bool) -> torch.Tensor:
    """Forward and backward of micro-batch ``index`` (the loss scaled by 1/accumulate, so the summed
    gradients are the mean over the effective batch); returns its logged terms (``_TERMS``, proxy
    bpp, mean q, the plain codec's loss). With accumulate = 1, micro-batch s is step s's batch.
    Under DDP only the last micro-batch of a step all-reduces the gradients (``sync``)."""
    if isinstance(data, TargetImages):
        batch, goal = data.batch(index, cfg.batch_size)
        goal = goal[rows].to(ctx.device)
    else:
        batch, goal = data.batch(index, cfg.batch_size), None
    x, quality = batch.x[rows].to(ctx.device), batch.quality[rows]
    _seed_step(cfg.seed, index, ctx.rank)
    cond = bpg_conditioning(quality, ctx.device)
    no_sync = getattr(model, "no_sync", None)
    with no_sync() if no_sync is not None and not sync else contextlib.nullcontext():
        if goal is not None:
            return _distill_step(cfg, model, x, cond, quality, goal)
        x_bar = model(x, cond)["x_bar"]
        coded = st(x_bar, quality)
        target = loss_fn.target(x)
        terms = loss_fn(x, x_bar, coded, quality, target)
        if not math.isfinite(float(terms["total"].detach())):
            raise FloatingPointError(f"micro-batch {index}: loss is {float(terms['total'])}")
        (terms["total"] / cfg.accumulate).backward()
    plain = _plain_loss(st, loss_fn, x, quality, target) if cfg.log_plain else torch.tensor(math.nan)
    proxy_bpp = coded["proxy_bits"].detach().mean() / (x.shape[-1] * x.shape[-2])
    return torch.stack([terms[k].detach().float().cpu() for k in _TERMS]
                       + [proxy_bpp.float().cpu(), quality.float().mean(), plain.float().cpu()])


def _distill_step(cfg: TrainConfig, model: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor,
                  quality: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Regression onto the optimised pictures: ``total`` is the configured penalty of X̄ − X* (MSE
    or mean absolute error, ``overblur_weight`` times where X̄ moves further from X than X* does)
    plus, with a ``shape_weight``, the weighted shape term; ``plain_total``
    the same objective for the identity, X̄ = X (the gap is what the network has learnt);
    ``pixel_mse`` MSE(X̄, X); the codec and task terms are not computed (NaN)."""
    spec = cfg.distill
    assert spec is not None

    def objective(y: torch.Tensor) -> torch.Tensor:
        err = (y - goal).abs() if spec.loss == "l1" else (y - goal) ** 2
        if spec.overblur_weight != 1.0:
            err = torch.where((y - x).abs() > (goal - x).abs(), spec.overblur_weight * err, err)
        pixel = err.mean()
        if spec.shape_weight == 0:
            return pixel
        return pixel + spec.shape_weight * shape_loss(x, y, goal, spec.sigma, spec.scale)

    x_bar = model(x, cond)["x_bar"]
    loss = objective(x_bar)
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError(f"distillation loss is {float(loss)}")
    (loss / cfg.accumulate).backward()
    nan = torch.tensor(math.nan)
    with torch.no_grad():
        pixel, plain = ((x_bar - x) ** 2).mean().cpu(), objective(x).cpu()
    return torch.stack([loss.detach().cpu(), nan, nan, pixel, nan, nan, quality.float().mean(), plain]).float()


@torch.no_grad()
def _plain_loss(st: StraightThroughCodec, loss_fn: RDLoss, x: torch.Tensor, quality: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
    """The loss the plain codec scores on the same batch at the same q (no NPP): ``total`` minus
    this is the NPP's gain on that batch, free of the batch's content, which dominates ``total``.
    Runs after the backward pass and the next micro-batch reseeds the RNG, so the noise
    quantiser's draws and the trajectory are the same with or without it."""
    return loss_fn(x, x, st(x, quality), quality, target)["total"]


class _Validation:
    """Validation passes of one run: the CSV log and the best checkpoint so far."""

    def __init__(self, cfg: TrainConfig, data: TrainImages, task: Any, pool: EncoderPool | None,
                 logged: list[dict[str, str]]) -> None:
        holdout = data.holdout()
        self.cfg, self.key = cfg, f"bd_kl_{cfg.task}"
        self.validator = held_out_validator(cfg, holdout.x, holdout.ids, pool, task)
        self.path, self.best_path = cfg.out_dir() / VALIDATION_LOG, cfg.out_dir() / BEST
        done = [float(r[self.key]) for r in logged if r.get(self.key) not in (None, "", "nan")]
        self.best = min(done) if done else math.inf

    def run(self, npp: NppModule, state: TrainState) -> dict[str, float]:
        result = self.validator.run(npp_prefilter(npp))
        row = {"step": state.step, "wall_s": round(state.wall_s, 3), "cpu_s": round(state.cpu_s, 3),
               **result.row()}
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        value = row[self.key]
        if math.isfinite(value) and value < self.best:
            self.best = value
            save_best(self.best_path, self.cfg, npp, state, row)
        return row


def save_best(path: Path, cfg: TrainConfig, npp: torch.nn.Module, state: TrainState,
              metrics: dict[str, float]) -> None:
    """Weights and provenance in the form ``training.export --checkpoint`` reads."""
    buf = io.BytesIO()
    torch.save(_export_blob(cfg, npp.state_dict(), state, metrics), buf)
    atomic_write_bytes(path, buf.getvalue())


def _export_blob(cfg: TrainConfig, weights: dict[str, torch.Tensor], state: TrainState,
                 metrics: dict[str, float]) -> dict[str, Any]:
    return {"state_dict": weights, "variant": cfg.npp, "run_id": f"{cfg.name}@{state.step}",
            "identity": cfg.identity(), "step": state.step, "cpu_s": state.cpu_s,
            "qps": list(range(cfg.qp_min, cfg.qp_max + 1)), "trained_codecs": ["bpg"],
            "metrics": {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}}


def is_training_checkpoint(blob: object) -> bool:
    return isinstance(blob, dict) and blob.get("format") == FORMAT


def checkpoint_as_export(blob: dict[str, Any], path: Path) -> dict[str, Any]:
    """A run's ``checkpoint.pt`` (already loaded) in the form ``save_best`` writes: its weights, its
    provenance, and the validation row of its step when ``validation.csv`` beside it has one."""
    cfg = TrainConfig.model_validate(blob["config"])
    state = TrainState(int(blob["step"]), float(blob["wall_s"]), float(blob["cpu_s"]))
    metrics: dict[str, float] = {"step": state.step, "wall_s": state.wall_s, "cpu_s": state.cpu_s}
    log = path.parent / VALIDATION_LOG
    if log.is_file():
        with log.open() as f:
            for row in csv.DictReader(f):
                if int(row["step"]) == state.step:
                    metrics.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return _export_blob(cfg, blob["npp"], state, metrics)


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ValueError("tensorboard: true needs the tensorboard package (pip install tensorboard); "
                         "the CSV log is written without it") from exc
    return SummaryWriter(str(folder))
