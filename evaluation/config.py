"""What a sweep runs: dataset × task × codecs × qualities × preprocessing, and how."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evaluation.preprocessors import spec_label


class SweepError(RuntimeError):
    """A sweep cannot run (bad config, image/codec mismatch, inconsistent resume data)."""


@dataclass
class CodecSpec:
    name: str
    qualities: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepConfig:
    dataset_kind: str
    dataset: str
    task: str
    codecs: list[CodecSpec]
    out: str
    limit: int | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    # "none", a built-in name, "module:function", an artifact dir, or a callable (in-process use)
    preprocess: list[Any] = field(default_factory=lambda: ["none"])
    cache_dir: str | None = None  # None → shared.paths.cache_dir("eval"); "" → no cache
    workers: int | None = None  # encoder processes; None → shared.runtime's encode_workers (2)
    batch_size: int = 32
    progress: bool = True
    mp_context: str = "spawn"
    # torch threads for inference in the main process; None = CPUs left over by the encoders
    # (≥ 1). Oversubscribing the cores (2 encoders + 2 torch threads on 2 CPUs) made inference 3×
    # slower in measurements here.
    inference_threads: int | None = None

    @staticmethod
    def from_dict(d: dict[str, Any]) -> SweepConfig:
        d = dict(d)
        known = set(SweepConfig.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise SweepError(f"unknown sweep config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        codecs = []
        for c in d.get("codecs", []):
            if not isinstance(c, dict) or "name" not in c or "qualities" not in c:
                raise SweepError(f"each codec needs 'name' and 'qualities', got {c!r}")
            codecs.append(CodecSpec(str(c["name"]), [int(q) for q in c["qualities"]], dict(c.get("options") or {})))
        d["codecs"] = codecs
        for key in ("dataset_kind", "dataset", "task", "out"):
            if key not in d:
                raise SweepError(f"sweep config is missing {key!r}")
        return SweepConfig(**d)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["preprocess"] = [spec_label(p) for p in self.preprocess]
        return d


def load_config(path: str | Path) -> SweepConfig:
    """A sweep config from YAML (keys as :class:`SweepConfig`; codecs: [{name, qualities, options}])."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise SweepError(f"sweep config not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SweepError(f"{p}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise SweepError(f"{p}: expected a mapping at the top level")
    return SweepConfig.from_dict(data)
