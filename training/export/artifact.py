"""Export one NPP as a self-describing artifact directory: model.onnx, model.ts, manifest.json."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shared.conditioning import CONDITIONING_FORMULA, conditioning_codecs
from shared.manifest import (
    ConditioningSpec,
    NppManifest,
    TensorSpec,
    TrainingInfo,
    describe_file,
    sha256_file,
    write_manifest,
)
from training.export.errors import CheckpointError, ParityError
from training.export.onnx_export import (
    COND_INPUT,
    IMAGE_INPUT,
    ONNX_OPSET,
    OUTPUT,
    export_onnx,
    export_torchscript,
    input_names,
    parity,
)
from training.npp.model import PAD_MULTIPLE, count_parameters
from training.npp.variants import NPP_VARIANTS, NppModule
from training.train.loop import checkpoint_as_export, is_training_checkpoint

log = logging.getLogger(__name__)

#: QPs of the authors' QA training schedule (Lu et al., TCSVT 2024).
PAPER_QPS = (25, 28, 29, 31, 34, 37, 40, 44)
PARITY_TOLERANCE = 1e-4


@dataclass
class ExportOptions:
    #: BPG QPs trained for; None: the authors' schedule for QA variants, bpgenc's default 29 otherwise.
    qps: tuple[int, ...] | None = None
    trained_codecs: tuple[str, ...] = ("bpg",)
    #: Declared serving codecs; by default every codec with a conditioning map (the paper uses an
    #: NPP trained on BPG unchanged with JPEG and VVC).
    serves_codecs: tuple[str, ...] = field(default_factory=lambda: tuple(conditioning_codecs()))
    parity_kodak: int = 2  # real images in the parity check (0 to skip)
    parity_kodak_crop: int | None = None  # crop side for speed (None = full image)
    tolerance: float = PARITY_TOLERANCE


def shared_dir() -> Path:
    from shared.paths import shared_data_dir

    return shared_data_dir()


def kodak_images(count: int, crop: int | None = None) -> list[np.ndarray]:
    """The first ``count`` Kodak images as (1,3,H,W) float32 in [0,1]."""
    folder = shared_dir() / "data" / "kodak"
    files = sorted(folder.glob("kodim*.png"))[:count]
    if count and not files:
        raise FileNotFoundError(f"no Kodak PNGs in {folder.resolve()} (set PREPICM_SHARED_DIR)")
    out = []
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        if crop is not None:
            rgb = rgb[:crop, :crop]
        out.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)
    return out


def load_checkpoint(npp: NppModule, variant: str, path: Path) -> dict[str, Any]:
    """Load weights; returns the checkpoint's metadata (run_id, metrics, qps, codecs when present).

    Accepted: a raw state_dict, a dict with ``state_dict`` (or ``model``) plus optional
    ``variant``, ``run_id``, ``metrics``, ``qps``, ``trained_codecs`` (a run's ``best.pt``), or a
    run's ``checkpoint.pt`` (``python -m training.train``).
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.resolve()} not found")
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(blob, dict):
        raise CheckpointError(f"checkpoint {path} holds {type(blob).__name__}, not a dict")
    if is_training_checkpoint(blob):  # a run's checkpoint.pt: weights plus the run's provenance
        blob = checkpoint_as_export(blob, path)
    state = blob.get("state_dict", blob.get("model", blob))
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} has no state_dict")
    meta = {k: v for k, v in blob.items() if k not in ("state_dict", "model")} if state is not blob else {}
    if meta.get("variant") not in (None, variant):
        raise CheckpointError(f"checkpoint {path} is NPP variant {meta['variant']!r}, not {variant!r}")
    try:
        npp.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit NPP variant {variant!r}: {exc}") from exc
    meta["checkpoint_sha256"] = sha256_file(path)
    return meta


def export_artifact(variant: str, out_dir: Path, checkpoint: Path | None = None,
                    options: ExportOptions | None = None) -> NppManifest:
    """Write model.onnx, model.ts and manifest.json for ``variant`` into ``out_dir``."""
    opts = options or ExportOptions()
    spec = NPP_VARIANTS.get(variant)
    npp = spec.build()
    meta: dict[str, Any] = {}
    if checkpoint is not None:
        meta = load_checkpoint(npp, spec.name, checkpoint)
    npp.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(npp, out_dir / "model.onnx")
    ts_path = export_torchscript(npp, out_dir / "model.ts")
    log.info("exported %s to %s", spec.name, out_dir)

    rng = np.random.default_rng(0)
    randoms = [rng.random((2, 3, 48, 64), dtype=np.float32), rng.random((1, 3, 37, 53), dtype=np.float32)]
    checks = parity(npp, onnx_path, ts_path, randoms)
    measured = {"onnx_max_abs_diff_random": checks["onnx_max_abs_diff"],
                "torchscript_max_abs_diff_random": checks["torchscript_max_abs_diff"]}
    if opts.parity_kodak:
        real = parity(npp, onnx_path, ts_path, kodak_images(opts.parity_kodak, opts.parity_kodak_crop))
        measured["onnx_max_abs_diff_kodak"] = real["onnx_max_abs_diff"]
        measured["torchscript_max_abs_diff_kodak"] = real["torchscript_max_abs_diff"]
    worst = max(measured.values())
    if worst > opts.tolerance:
        raise ParityError(
            f"exported {spec.name} differs from PyTorch by {worst:.2e} > {opts.tolerance:.0e}: {measured}"
        )

    qa = npp.quantization_adaptive
    inputs = [TensorSpec(name=IMAGE_INPUT, shape=["N", 3, "H", "W"])]
    if qa:
        inputs.append(TensorSpec(name=COND_INPUT, shape=["N", 1], layout="N1", color="none"))
    conditioning = (
        ConditioningSpec(
            kind="bpg_qp_normalised", input_name=COND_INPUT, formula=CONDITIONING_FORMULA,
            derived_from="codec operating point via shared.conditioning.conditioning_value(codec, quality)",
        )
        if qa else ConditioningSpec(kind="none", derived_from="single-QP network: no conditioning input")
    )
    default_qps = opts.qps or (PAPER_QPS if qa else (29,))
    qps = [int(q) for q in meta.get("qps", default_qps)]
    trained = checkpoint is not None
    training = TrainingInfo(
        trained=trained,
        run_id=meta.get("run_id") or (checkpoint.stem if checkpoint is not None else None),
        checkpoint_sha256=meta.get("checkpoint_sha256"),
        trained_codecs=list(meta.get("trained_codecs", opts.trained_codecs)),
        serves_codecs=list(opts.serves_codecs),
        qps=qps,
        metrics={k: float(v) for k, v in dict(meta.get("metrics", {})).items()},
        note="" if trained else "UNTRAINED: random initial weights; for plumbing and speed tests only",
    )
    manifest = NppManifest(
        variant=spec.name,
        quantization_adaptive=qa,
        parameters=count_parameters(npp),
        inputs=inputs,
        outputs=[TensorSpec(name=OUTPUT, shape=["N", 3, "H", "W"])],
        padding_multiple=PAD_MULTIPLE,
        min_side=PAD_MULTIPLE,
        conditioning=conditioning,
        training=training,
        onnx=describe_file(out_dir, onnx_path.name),
        onnx_opset=ONNX_OPSET,
        torchscript=describe_file(out_dir, ts_path.name),
        parity=measured,
        torch_version=torch.__version__,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    assert manifest.input_names() == input_names(npp)
    write_manifest(manifest, out_dir)
    return manifest
