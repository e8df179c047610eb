"""Training run configuration: one YAML file → :class:`TrainConfig` (validated, nothing implicit).

Paths in the YAML are relative to the repository root unless absolute; ``${shared}`` expands to
the shared data folder (``shared.paths.shared_data_dir``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.paths import repo_root, shared_data_dir


class ConfigError(ValueError):
    """A training configuration that cannot run (the message names the field)."""


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folder: str = "${shared}/data/imagenet/train"
    #: images in the folder (sorted by name) used for training: [first, first + count)
    first: int = Field(200, ge=0)
    count: int | None = Field(None, ge=1)
    #: held out for validation and checkpoint selection: [holdout_first, + holdout_count)
    holdout_first: int = Field(0, ge=0)
    holdout_count: int = Field(50, ge=0)
    crop: int = Field(224, ge=16)
    hflip: bool = True

    def path(self) -> Path:
        return resolve_path(self.folder)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "npp"
    seed: int = 0
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0)
    npp: str = "lite_qa"
    #: "identity": start the NPP at the identity map (training.train.loop.identity_init); "random": PyTorch's init
    init: Literal["identity", "random"] = "identity"
    task: str = "efficientnet_lite0"
    distortion: Literal["kl", "ce"] = "kl"
    beta: float = Field(0.5, ge=0)
    normalise_rate: bool = True
    #: rate–distortion points of the plain codec that set λ(q) (a sweep JSON's ``points``)
    lambda_points: str = "configs/training/bpg_efficientnet_lite0_points.json"
    proxy_params: str | None = None  # None: training/proxy/bpg_proxy_params.json
    quantiser: Literal["ste", "noise"] = "ste"
    codec_forward: Literal["real", "proxy"] = "real"
    codec_level: int = Field(8, ge=0, le=9)
    qp_min: int = Field(25, ge=0, le=51)
    qp_max: int = Field(44, ge=0, le=51)
    encode_workers: int = Field(2, ge=1)
    torch_threads: int | None = Field(None, ge=1)
    log_every: int = Field(1, ge=1)
    #: also write TensorBoard events under <out>/tb (needs `pip install tensorboard`; CSV is always written)
    tensorboard: bool = False
    checkpoint_every: int = Field(50, ge=1)
    out: str = "runs/npp"
    data: DataConfig = Field(default_factory=DataConfig)

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

    def out_dir(self) -> Path:
        return resolve_path(self.out)

    def identity(self) -> str:
        """A hash of everything that changes the trajectory (not ``steps``, ``out``, logging)."""
        d = self.model_dump()
        for k in ("steps", "out", "log_every", "checkpoint_every", "encode_workers", "torch_threads"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


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
