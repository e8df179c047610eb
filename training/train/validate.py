"""Validation on held-out images: the real codec's rate against the frozen task models' distortion,
for the plain codec and for NPP + codec, and the BD-rate between the two curves.

What a BD-rate needs is measured here with nothing approximated: every held-out image is coded by
the real codec at each validation quality (with and without the NPP in front), decoded exactly,
and scored by each task model against its own prediction on the pristine image — KL in nats and
top-1 agreement. The BD-rate at equal KL with its paired bootstrap interval
(:func:`shared.metrics.bdrate.bootstrap_bd_rate`) is what checkpoints are selected on; a second
backbone that the NPP never trains against shows whether a gain is semantic or adversarial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shared.codecs import Codec
from shared.codecs.bpg.codec import BpgCodec
from shared.conditioning import conditioning_value
from shared.metrics.bdrate import BootstrapResult, PerImageCurve, bootstrap_bd_rate
from shared.pipeline import EncoderPool, round_trip_batch
from shared.tasks import TaskModel, get_task
from training.proxy.real_codec import to_frames
from training.train.config import TrainConfig

#: x (N,3,H,W) in [0,1] and a quality → what the codec is given at that quality
Prefilter = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class CodedScores:
    """Per quality (P) × per image (N): file bits, and for each task KL and top-1 agreement with
    its prediction on the pristine image."""

    qualities: tuple[int, ...]
    ids: tuple[str, ...]
    bits: np.ndarray  # (P, N)
    pixels: np.ndarray  # (N,)
    kl: Mapping[str, np.ndarray]  # task → (P, N) nats
    agreement: Mapping[str, np.ndarray]  # task → (P, N) 0/1

    def bpp(self) -> np.ndarray:
        return self.bits.sum(1) / self.pixels.sum()

    def curve(self, task: str, metric: str = "kl") -> PerImageCurve:
        values = self.kl[task] if metric == "kl" else self.agreement[task]
        return PerImageCurve(self.bits, self.pixels, values=values, labels=[str(q) for q in self.qualities],
                             ids=list(self.ids))


@torch.no_grad()
def score(x: torch.Tensor, ids: Sequence[str], qualities: Sequence[int], codec: Codec,
          tasks: Mapping[str, TaskModel], prefilter: Prefilter | None = None, pool: EncoderPool | None = None,
          chunk: int = 25) -> CodedScores:
    """Code ``x`` (optionally through ``prefilter`` first) at every quality and score the decoded pictures."""
    n, _, h, w = x.shape
    targets = {name: t.distill_target(x) for name, t in tasks.items()}
    bits = np.zeros((len(qualities), n))
    kl = {name: np.zeros((len(qualities), n)) for name in tasks}
    agree = {name: np.zeros((len(qualities), n)) for name in tasks}
    for p, q in enumerate(qualities):
        for lo in range(0, n, chunk):
            xs = x[lo : lo + chunk]
            x_in = prefilter(xs, q) if prefilter is not None else xs
            decoded, b = round_trip_batch(to_frames(x_in), codec, q, pool=pool)
            bits[p, lo : lo + len(decoded)] = b
            x_hat = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 255.0
            for name, task in tasks.items():
                target = targets[name][lo : lo + chunk]
                log_p = F.log_softmax(task.logits(x_hat).float(), dim=1)  # type: ignore[attr-defined]
                kl[name][p, lo : lo + chunk] = F.kl_div(log_p, target, reduction="none").sum(1).cpu().numpy()
                agree[name][p, lo : lo + chunk] = (log_p.argmax(1) == target.argmax(1)).float().cpu().numpy()
    return CodedScores(tuple(int(q) for q in qualities), tuple(ids), bits, np.full(n, float(h * w)), kl, agree)


def npp_prefilter(npp: torch.nn.Module, codec_name: str = "bpg") -> Prefilter:
    """The NPP in evaluation mode, conditioned on the quality it is coded at."""

    def run(x: torch.Tensor, q: int) -> torch.Tensor:
        npp.eval()
        device = next(npp.parameters()).device
        cond = torch.full((x.shape[0], 1), conditioning_value(codec_name, int(q)), device=device)
        return npp(x.to(device), cond)["x_bar"]

    return run


@dataclass(frozen=True)
class ValidationResult:
    """BD-rates of NPP + codec against the plain codec on the held-out images, per task."""

    bd_kl: Mapping[str, BootstrapResult]
    bd_agreement: Mapping[str, BootstrapResult]
    plain: CodedScores
    npp: CodedScores

    def row(self) -> dict[str, float]:
        """Flat numbers for a CSV log: ``bd_kl_<task>`` (+ ``_low``/``_high``), ``bd_agree_<task>``,
        and the NPP's bpp and mean KL at each quality beside the plain codec's."""
        out: dict[str, float] = {}
        for name, r in self.bd_kl.items():
            out[f"bd_kl_{name}"] = r.estimate.value
            out[f"bd_kl_{name}_low"], out[f"bd_kl_{name}_high"] = r.low, r.high
            out[f"bd_agree_{name}"] = self.bd_agreement[name].estimate.value
        first = next(iter(self.bd_kl))
        for p, q in enumerate(self.npp.qualities):
            out[f"bpp_q{q}"] = float(self.npp.bpp()[p])
            out[f"plain_bpp_q{q}"] = float(self.plain.bpp()[p])
            out[f"kl_q{q}"] = float(self.npp.kl[first][p].mean())
            out[f"plain_kl_q{q}"] = float(self.plain.kl[first][p].mean())
        return out


class Validator:
    """Scores the plain codec once, then any NPP against it on the same images and qualities."""

    def __init__(self, x: torch.Tensor, ids: Sequence[str], qualities: Sequence[int], codec: Codec,
                 tasks: Mapping[str, TaskModel], pool: EncoderPool | None = None, bootstrap: int = 200,
                 seed: int = 0) -> None:
        if len(qualities) < 2:
            raise ValueError("validation needs at least 2 qualities for a BD-rate")
        self.x, self.ids, self.qualities = x, tuple(ids), tuple(int(q) for q in qualities)
        self.codec, self.tasks, self.pool = codec, dict(tasks), pool
        self.bootstrap, self.seed = bootstrap, seed
        self._plain: CodedScores | None = None

    @property
    def plain(self) -> CodedScores:
        if self._plain is None:
            self._plain = score(self.x, self.ids, self.qualities, self.codec, self.tasks, pool=self.pool)
        return self._plain

    def _passes_through(self, prefilter: Prefilter, chunk: int = 25) -> bool:
        """Whether the codec would be given exactly the plain frames at every quality (a network at
        the identity, where a run starts): then its scores are the plain codec's, with no coding."""
        with torch.no_grad():
            for q in self.qualities:
                for lo in range(0, len(self.ids), chunk):
                    xs = self.x[lo : lo + chunk]
                    if not all(np.array_equal(a, b) for a, b in zip(to_frames(prefilter(xs, q)), to_frames(xs),
                                                                     strict=True)):
                        return False
        return True

    def run(self, prefilter: Prefilter) -> ValidationResult:
        plain = self.plain
        test = plain if self._passes_through(prefilter) else score(self.x, self.ids, self.qualities, self.codec,
                                                                   self.tasks, prefilter, self.pool)
        bd_kl = {name: bootstrap_bd_rate(plain.curve(name), test.curve(name), higher_is_better=False,
                                         n=self.bootstrap, seed=self.seed) for name in self.tasks}
        bd_agree = {name: bootstrap_bd_rate(plain.curve(name, "agreement"), test.curve(name, "agreement"),
                                            n=self.bootstrap, seed=self.seed) for name in self.tasks}
        return ValidationResult(bd_kl, bd_agree, plain, test)


def held_out_validator(cfg: TrainConfig, x: torch.Tensor, ids: Sequence[str], pool: EncoderPool | None,
                       task: TaskModel | None = None) -> Validator:
    """A run's validation: its held-out pictures ``x`` coded by the run's BPG level at its
    validation qualities, scored by the trained-against task (``task`` if already loaded) and by
    every ``validate_tasks`` backbone."""
    tasks = {cfg.task: task or get_task(cfg.task),
             **{name: get_task(name) for name in cfg.validate_tasks if name != cfg.task}}
    return Validator(x, ids, cfg.validate_qualities, BpgCodec(level=cfg.codec_level), tasks, pool,
                     bootstrap=cfg.validate_bootstrap, seed=cfg.seed)
