"""Training run configuration: one YAML file → :class:`TrainConfig` (validated, nothing implicit).

Paths in the YAML are relative to the repository root unless absolute; ``${shared}`` expands to
the shared data folder (``shared.paths.shared_data_dir``).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.paths import repo_root, shared_data_dir


class ConfigError(ValueError):
    """A training configuration that cannot run (the message names the field)."""


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folder: str = "${shared}/data/imagenet/train"
    #: images in the folder (sorted by name) used for training: [first, first + count)
    first: Annotated[int, Field(ge=0)] = 200
    count: Annotated[int | None, Field(ge=1)] = None
    #: held out for validation and checkpoint selection: [holdout_first, + holdout_count)
    holdout_first: Annotated[int, Field(ge=0)] = 0
    holdout_count: Annotated[int, Field(ge=0)] = 50
    crop: Annotated[int, Field(ge=16)] = 224
    #: resize every whole picture to resize×resize (area filter, aspect not kept) before cropping,
    #: so training sees objects at the scale the evaluation does (our ImageNet val pictures are
    #: whole photos squashed to 227×227; the train pictures ~448×336 would show them 2× larger)
    resize: Annotated[int | None, Field(ge=16)] = None
    hflip: bool = True

    def path(self) -> Path:
        return resolve_path(self.folder)


class DistillConfig(BaseModel):
    """Learn per-image optimised pictures by regression instead of the rate–distortion loss
    (:mod:`training.train.distill`). ``steps``, ``lr`` and ``beta`` make the targets: Adam steps on
    each picture's pixels against the run's loss with pixel weight ``beta``."""

    model_config = ConfigDict(extra="forbid")

    targets: str
    steps: Annotated[int, Field(ge=1)] = 20
    lr: Annotated[float, Field(gt=0)] = 3e-3
    beta: Annotated[float, Field(ge=0)] = 0.5
    #: pictures per target file
    shard: Annotated[int, Field(ge=1)] = 16
    #: train on the first this many target pictures (None: every shard in the folder)
    images: Annotated[int | None, Field(ge=1)] = None
    #: what the optimisation may change (training.train.pixel_forms): every pixel, a smooth
    #: perturbation (lowres) or a smooth detail-gain map (detail_gain); scale and sigma shape the
    #: last two
    form: str = "pixels"
    scale: Annotated[int, Field(ge=1)] = 8
    sigma: Annotated[float, Field(gt=0)] = 1.5
    #: change only the part of the (resized) picture the task model reads
    window: bool = False
    #: a second folder of targets for the same pictures, optimised mirrored left to right and
    #: mirrored back; the run regresses onto the mean of the two, which keeps what a filter of the
    #: content would do to either view and halves what is tied to one view's codec decisions
    mirrored_targets: str | None = None
    #: the regression's penalty on X̄ − X*: ``mse`` learns the mean of what the targets do to
    #: alike-looking regions, ``l1`` their median, which keeps one of two modes (keep the detail or
    #: blur it) where the mean would half-blur both
    loss: Literal["mse", "l1"] = "mse"
    #: weight of a second term on the maps' *shape*: the MSE between the network's and the
    #: targets' per-cell detail gains (training.train.map_shape), each picture's mean removed, over
    #: the crop's inner cells. The pixel regression is dominated by each picture's overall level
    #: of blur; the gain lies in where detail is kept (docs/training.md, lesson 12)
    shape_weight: Annotated[float, Field(ge=0)] = 0.0
    #: weight of the pixel penalty where the network changes a pixel more than the target does
    #: (1 elsewhere). Errors are not alike: blurring what the target keeps costs accuracy, keeping
    #: what it blurs only bits; above 1 the regression errs on the side of keeping detail
    overblur_weight: Annotated[float, Field(gt=0)] = 1.0

    @field_validator("form")
    @classmethod
    def _known_form(cls, v: str) -> str:
        from shared.registry import RegistryError
        from training.train.pixel_forms import PICTURE_FORMS

        try:
            PICTURE_FORMS.get(v)
        except RegistryError as exc:  # pydantic reports ValueErrors only
            raise ValueError(str(exc)) from None
        return v


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "npp"
    seed: int = 0
    steps: Annotated[int, Field(ge=1)] = 1000
    batch_size: Annotated[int, Field(ge=1)] = 4
    #: micro-batches of ``batch_size`` whose gradients are averaged into one optimiser step: an
    #: effective batch of batch_size × accumulate in the memory of one micro-batch (at batch 4 a
    #: step of this loss is almost all gradient noise; see docs/training.md)
    accumulate: Annotated[int, Field(ge=1)] = 1
    lr: Annotated[float, Field(gt=0)] = 1e-4
    #: "constant": ``lr`` throughout; "cosine": ``lr`` decayed to 0 along a half cosine over ``steps``
    #: (then ``steps`` is part of the run's identity: extending the run changes its trajectory)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    npp: str = "lite_qa"
    #: "identity": start the NPP at the identity map (training.train.loop.identity_init); "random": PyTorch's init
    init: Literal["identity", "random"] = "identity"
    #: start from the NPP weights of another run instead (its checkpoint.pt or best.pt): a second
    #: stage with another loss; the file's sha256 is part of the run's identity
    init_from: str | None = None
    #: "batch": batch-norm normalises with the batch's statistics while training (PyTorch's
    #: train mode); "frozen": with its running statistics throughout, so the network trained is the
    #: one exported (the QA gains differ per image, and a small batch of mixed q makes batch
    #: statistics a noisy, q-mixing function of the other images in the batch)
    batchnorm: Literal["batch", "frozen"] = "batch"
    task: str = "efficientnet_lite0"
    distortion: Literal["kl", "ce"] = "kl"
    beta: Annotated[float, Field(ge=0)] = 0.5
    normalise_rate: bool = True
    #: rate–distortion points of the plain codec that set λ(q) (a sweep JSON's ``points``)
    lambda_points: str = "configs/training/bpg_efficientnet_lite0_points.json"
    proxy_params: str | None = None  # None: training/proxy/bpg_proxy_params.json
    quantiser: Literal["ste", "noise"] = "ste"
    codec_forward: Literal["real", "proxy"] = "real"
    codec_level: Annotated[int, Field(ge=0, le=9)] = 8
    qp_min: Annotated[int, Field(ge=0, le=51)] = 25
    qp_max: Annotated[int, Field(ge=0, le=51)] = 44
    encode_workers: Annotated[int, Field(ge=1)] = 2
    #: where the NPP, proxy and task model run ("auto": CUDA when torch sees a GPU); not part of the
    #: identity, so a run resumes on another machine
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: Annotated[int | None, Field(ge=1)] = None
    log_every: Annotated[int, Field(ge=1)] = 1
    #: also code each batch without the NPP and log the plain codec's loss (``plain_total``) beside
    #: ``total``: their difference is the NPP's gain per step (one more real encode per image)
    log_plain: bool = False
    #: also write TensorBoard events under <out>/tb (needs `pip install tensorboard`; CSV is always written)
    tensorboard: bool = False
    checkpoint_every: Annotated[int, Field(ge=1)] = 50
    #: validate on the held-out images every this many steps (0: never); the best checkpoint by
    #: BD-rate at equal KL on ``task`` is kept as <out>/best.pt
    validate_every: Annotated[int, Field(ge=0)] = 0
    #: the qualities validation codes at (≥ 2, for a BD-rate)
    validate_qualities: list[int] = Field(default_factory=lambda: [26, 30, 34, 38, 42], min_length=2)
    #: task models scored beside ``task`` in validation, never trained against (transfer)
    validate_tasks: list[str] = Field(default_factory=lambda: ["mobilenet_v2"])
    validate_bootstrap: Annotated[int, Field(ge=10)] = 200
    out: str = "runs/npp"
    #: None: train on the rate–distortion loss; else regress onto per-image optimised targets
    distill: DistillConfig | None = None
    data: DataConfig = Field(default_factory=lambda: DataConfig())

    @field_validator("npp")
    @classmethod
    def _npp_known(cls, v: str) -> str:
        from training.npp import NPP_VARIANTS

        if v not in NPP_VARIANTS.names():
            raise ValueError(f"unknown NPP variant {v!r}; choose one of: {', '.join(NPP_VARIANTS.names())}")
        return v

    @model_validator(mode="after")
    def _qp_range(self) -> TrainConfig:
        if self.qp_min > self.qp_max:
            raise ValueError(f"qp_min {self.qp_min} > qp_max {self.qp_max}")
        return self

    def lr_at(self, step: int) -> float:
        """The learning rate of the optimiser step that follows ``step`` completed steps."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, self.steps) / self.steps))

    def out_dir(self) -> Path:
        return resolve_path(self.out)

    def identity(self) -> str:
        """A hash of everything that changes the trajectory (not ``steps``, ``out``, logging)."""
        d = self.model_dump()
        if self.init_from is not None:  # the weights, not the file name, decide the trajectory
            d["init_from"] = hashlib.sha256(resolve_path(self.init_from).read_bytes()).hexdigest()
        for (*parents, k), default in _LATER_FIELDS.items():  # at the value older runs implied: not hashed
            where = d
            for parent in parents:
                where = where.get(parent) or {}  # a section left out (None) has nothing to drop
            if k in where and where[k] == default:
                where.pop(k)
        if self.lr_schedule == "constant":
            d.pop("steps")
        for k in ("out", "log_every", "log_plain", "checkpoint_every", "encode_workers", "torch_threads",
                  "device",
                  *(k for k in d if k.startswith("validate_"))):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: Fields that change the trajectory but were added after runs were checkpointed, with the
#: behaviour those runs had: left out of the identity at that value, so their checkpoints resume.
_LATER_FIELDS: dict[tuple[str, ...], object] = {("batchnorm",): "batch", ("data", "resize"): None,
                                                ("accumulate",): 1, ("lr_schedule",): "constant", ("distill",): None,
                                                ("distill", "form"): "pixels", ("distill", "scale"): 8,
                                                ("distill", "sigma"): 1.5, ("distill", "window"): False,
                                                ("distill", "mirrored_targets"): None, ("distill", "loss"): "mse",
                                                ("distill", "shape_weight"): 0.0, ("distill", "overblur_weight"): 1.0}


def resolve_path(p: str) -> Path:
    s = p.replace("${shared}", str(shared_data_dir()))
    path = Path(s)
    return path if path.is_absolute() else repo_root() / path


def load_config(path: Path, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Read a YAML config; ``overrides`` (top-level keys) replace what the file says."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read training config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a training config is a mapping of keys, got {type(raw).__name__}")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:  # one line: "field: problem; field: problem"
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
