"""NPP → ONNX (dynamic batch/height/width, conditioning input) and TorchScript, with checks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.npp.variants import NppModule

ONNX_OPSET = 17
IMAGE_INPUT, COND_INPUT, OUTPUT = "image", "cond", "x_bar"


class _OnnxFacade(nn.Module):
    """Tensor in, tensor out: the exported graph's signature (dicts do not survive tracing)."""

    def __init__(self, npp: NppModule) -> None:
        super().__init__()
        self.npp = npp

    def forward(self, image: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.npp(image, cond)["x_bar"]


def input_names(npp: NppModule) -> list[str]:
    return [IMAGE_INPUT, COND_INPUT] if npp.quantization_adaptive else [IMAGE_INPUT]


def export_onnx(npp: NppModule, path: Path, opset: int = ONNX_OPSET) -> Path:
    """Trace ``npp`` (eval mode) to ONNX with dynamic N, H, W and run the ONNX checker."""
    import onnx

    npp = npp.eval()
    # An example with sides that are not multiples of 16 exercises the pad/crop ops in the trace.
    image = torch.rand(1, 3, 40, 56)
    names = input_names(npp)
    dynamic: dict[str, dict[int, str]] = {IMAGE_INPUT: {0: "N", 2: "H", 3: "W"}, OUTPUT: {0: "N", 2: "H", 3: "W"}}
    args: tuple[torch.Tensor, ...] = (image,)
    if npp.quantization_adaptive:
        args = (image, torch.full((1, 1), 0.6))
        dynamic[COND_INPUT] = {0: "N"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic are expected
        torch.onnx.export(
            _OnnxFacade(npp),
            args,
            str(path),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(path), full_check=True)
    return path


def export_torchscript(npp: NppModule, path: Path) -> Path:
    """Script (not trace) so the shape-dependent padding branch survives: any size, tiny ones too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but still the
        # one format that loads without the defining code on every torch the edge may run
        scripted = torch.jit.script(npp.eval())
    scripted.save(str(path))
    return path


def _run_onnx(path: Path, image: np.ndarray, cond: float | None) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {IMAGE_INPUT: image}
    if cond is not None:
        feeds[COND_INPUT] = np.full((image.shape[0], 1), cond, dtype=np.float32)
    return session.run([OUTPUT], feeds)[0]


def parity(npp: NppModule, onnx_path: Path, ts_path: Path | None, images: list[np.ndarray],
           cond: float = 0.6) -> dict[str, float]:
    """Max abs difference of ONNX Runtime (and TorchScript) against eager PyTorch, per image."""
    npp = npp.eval()
    c = cond if npp.quantization_adaptive else None
    scripted = None
    if ts_path is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # see export_torchscript
            scripted = torch.jit.load(str(ts_path))
    onnx_diff = ts_diff = 0.0
    for image in images:
        x = torch.from_numpy(image)
        ct = torch.full((image.shape[0], 1), cond)
        with torch.no_grad():
            ref = npp(x, ct if c is not None else None)["x_bar"].numpy()
            if scripted is not None:
                ts = scripted(x, ct if c is not None else None)["x_bar"].numpy()
                ts_diff = max(ts_diff, float(np.abs(ts - ref).max()))
        got = _run_onnx(onnx_path, image, c)
        if got.shape != ref.shape:
            raise AssertionError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
        onnx_diff = max(onnx_diff, float(np.abs(got - ref).max()))
    out = {"onnx_max_abs_diff": onnx_diff}
    if scripted is not None:
        out["torchscript_max_abs_diff"] = ts_diff
    return out
