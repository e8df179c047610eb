"""The manifest that travels with every exported NPP artifact, and the checks a loader runs on it.

An export directory holds ``model.onnx``, ``model.ts`` (TorchScript), optional TensorRT engines
under ``engines/`` and ``manifest.json`` (this model). The manifest is the artifact's contract:
what the inputs are, how the conditioning scalar is derived, which codec operating points the
network was trained for, what training produced it, and the sha256 of every file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.conditioning import CONDITIONING_KIND, equivalent_bpg_qp

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class ManifestError(Exception):
    """Base class: a manifest or the artifact it describes cannot be used."""


class ManifestInvalidError(ManifestError):
    """manifest.json is missing, not JSON, or does not follow the schema."""


class ArtifactMismatchError(ManifestError):
    """A file named in the manifest is missing or its sha256 differs from the manifest's."""


class ManifestMismatchError(ManifestError):
    """The manifest describes something other than what was asked for or what the file holds."""


class OperatingPointError(ManifestError):
    """The requested codec / quality lies outside what the network was trained for."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    name: str
    dtype: Literal["float32", "float16"] = "float32"
    #: Symbolic dims are strings ("N", "H", "W"); fixed dims are ints.
    shape: list[str | int]
    layout: Literal["NCHW", "N1"] = "NCHW"
    value_range: tuple[float, float] = (0.0, 1.0)
    color: Literal["RGB", "none"] = "RGB"


class ConditioningSpec(_Strict):
    """How the QA conditioning input is computed from the codec operating point."""

    kind: Literal["bpg_qp_normalised", "none"]
    input_name: str | None = None
    formula: str = ""
    value_range: tuple[float, float] = (0.0, 1.0)
    derived_from: str = ""

    @model_validator(mode="after")
    def _input_when_used(self) -> ConditioningSpec:
        if self.kind != "none" and not self.input_name:
            raise ValueError("a conditioned model must name its conditioning input")
        return self


class TrainingInfo(_Strict):
    """Provenance. ``trained`` False says plainly that the weights are a random initialisation."""

    trained: bool
    run_id: str | None = None
    checkpoint_sha256: str | None = None
    #: Codecs the network was trained with (forward pass) and those it is declared to serve.
    trained_codecs: list[str]
    serves_codecs: list[str]
    #: BPG QPs seen in training. QA networks accept any QP in [min, max]; single-QP ones only these.
    qps: list[int]
    metrics: dict[str, float] = Field(default_factory=dict)
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> TrainingInfo:
        if self.trained and not self.run_id:
            raise ValueError("a trained model must carry its training run_id")
        if not self.qps:
            raise ValueError("qps must list at least one BPG QP")
        if any(not 0 <= q <= 51 for q in self.qps):
            raise ValueError("qps must lie in 0..51 (BPG)")
        return self


class ArtifactFile(_Strict):
    path: str  # relative to the manifest's directory
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class EngineEntry(ArtifactFile):
    """A TensorRT engine: valid only on the GPU model, compute capability and TensorRT version it was
    built with (the same marketing name can cover boards of different capability, e.g. Jetson Orin)."""

    gpu: str
    compute_capability: str = Field(pattern=r"^\d+\.\d+$")
    tensorrt_version: str
    precision: Literal["fp16", "fp32"]
    #: min / opt / max input shapes (N, 3, H, W) of the optimisation profile.
    profile_min: tuple[int, int, int, int]
    profile_opt: tuple[int, int, int, int]
    profile_max: tuple[int, int, int, int]

    def describe(self) -> str:
        return f"{self.gpu} (sm {self.compute_capability}) / TensorRT {self.tensorrt_version} / {self.precision}"


class NppManifest(_Strict):
    schema_version: Literal[1] = 1  # SCHEMA_VERSION
    model: Literal["npp"] = "npp"
    variant: str
    quantization_adaptive: bool
    parameters: int = Field(gt=0)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    #: Graph pads internally (bottom/right, reflect) to this multiple and crops back.
    padding_multiple: int = 16
    #: Smallest side the exported graph accepts (reflect padding needs pad < side); smaller
    #: images are replicate-padded to this on the host, as the PyTorch model does.
    min_side: int = 16
    conditioning: ConditioningSpec
    training: TrainingInfo
    onnx: ArtifactFile
    onnx_opset: int = Field(ge=17)
    torchscript: ArtifactFile | None = None
    engines: list[EngineEntry] = Field(default_factory=list)
    #: Measured export checks, e.g. {"onnx_max_abs_diff_random": 3e-7, ...}.
    parity: dict[str, float] = Field(default_factory=dict)
    torch_version: str = ""
    created_at: str = ""

    @model_validator(mode="after")
    def _conditioning_matches_inputs(self) -> NppManifest:
        names = [t.name for t in self.inputs]
        if not names or names[0] != "image":
            raise ValueError("the first input must be 'image'")
        if self.quantization_adaptive:
            if self.conditioning.kind == "none" or self.conditioning.input_name not in names:
                raise ValueError("a QA model needs a conditioning input listed in inputs")
        elif self.conditioning.kind != "none" or len(names) != 1:
            raise ValueError("a model without QA layers takes only 'image' and no conditioning")
        return self

    # -- checks a loader runs --------------------------------------------------------------------

    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def check_variant(self, variant: str | None) -> None:
        if variant is not None and variant.lower() != self.variant:
            raise ManifestMismatchError(
                f"artifact holds NPP variant {self.variant!r}, but {variant!r} was requested"
            )

    def check_operating_point(self, codec: str, quality: float) -> float:
        """Raise unless the network serves ``codec`` at ``quality``; return the BPG-equivalent QP."""
        serves = [c.lower() for c in self.training.serves_codecs]
        if codec.lower() not in serves:
            raise OperatingPointError(
                f"NPP {self.variant!r} serves codecs {serves}, not {codec!r}"
            )
        qp = equivalent_bpg_qp(codec, quality)
        qps = sorted(self.training.qps)
        if self.quantization_adaptive:
            if not qps[0] - 0.5 <= qp <= qps[-1] + 0.5:
                raise OperatingPointError(
                    f"{codec} quality {quality} ≈ BPG QP {qp:.1f}, outside the trained QP range "
                    f"{qps[0]}..{qps[-1]} of NPP {self.variant!r}"
                )
        elif min(abs(qp - q) for q in qps) > 0.5:
            raise OperatingPointError(
                f"{codec} quality {quality} ≈ BPG QP {qp:.1f}; NPP {self.variant!r} has no QA layers "
                f"and was trained only for QP {qps}"
            )
        return qp


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_file(directory: Path, relative: str) -> ArtifactFile:
    path = directory / relative
    return ArtifactFile(path=relative, sha256=sha256_file(path), size_bytes=path.stat().st_size)


def load_manifest(directory: Path | str) -> NppManifest:
    """Read and validate ``<directory>/manifest.json``; typed errors name the file."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestInvalidError(f"no {MANIFEST_NAME} in {Path(directory).resolve()}")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestInvalidError(f"{path} is not readable JSON: {exc}") from exc
    try:
        return NppManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestInvalidError(f"{path} does not follow the NPP manifest schema:\n{exc}") from exc


def write_manifest(manifest: NppManifest, directory: Path | str) -> Path:
    path = Path(directory) / MANIFEST_NAME
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return path


def verify_file(directory: Path | str, entry: ArtifactFile) -> Path:
    """The file's path, after checking it exists and its sha256 matches the manifest."""
    path = Path(directory) / entry.path
    if not path.is_file():
        raise ArtifactMismatchError(f"{entry.path} named in the manifest is missing from {directory}")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ArtifactMismatchError(
            f"{path}: sha256 {actual[:16]}… differs from the manifest's {entry.sha256[:16]}… "
            "(file replaced or corrupted after export)"
        )
    return path


def verify_artifacts(manifest: NppManifest, directory: Path | str) -> None:
    """Check every file the manifest lists."""
    for entry in [manifest.onnx, manifest.torchscript, *manifest.engines]:
        if entry is not None:
            verify_file(directory, entry)


__all__ = [
    "CONDITIONING_KIND",
    "MANIFEST_NAME",
    "ArtifactFile",
    "ArtifactMismatchError",
    "ConditioningSpec",
    "EngineEntry",
    "ManifestError",
    "ManifestInvalidError",
    "ManifestMismatchError",
    "NppManifest",
    "OperatingPointError",
    "TensorSpec",
    "TrainingInfo",
    "describe_file",
    "load_manifest",
    "sha256_file",
    "verify_artifacts",
    "verify_file",
    "write_manifest",
]
