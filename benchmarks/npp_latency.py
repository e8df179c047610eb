"""NPP latency, throughput, peak memory, parameters and FLOPs per variant, backend and resolution.

    python benchmarks/npp_latency.py                      # CPU rows (and GPU rows where a GPU exists)
    python benchmarks/npp_latency.py --variants lite_qa --resolutions 224x224

Exports each variant (untrained weights: latency does not depend on them) into a temporary
directory, opens it through the edge backends exactly as the edge service does, and times
``backend.run`` on a batch of 1 (median and p90 over repeats, after warm-up). Peak memory is the
largest process RSS seen while the backend was created and run, minus the RSS before (one process:
memory freed by an earlier row is reused, so later rows can show less). On a shared machine
compare "min ms" (least disturbed run) with the median. FLOPs are
counted analytically from the convolution and linear layers (2 × multiply-accumulates).
Writes the table to benchmarks/results/npp_latency_cpu.md (CPU rows) as well as printing it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.backends import create_backend  # noqa: E402
from training.export import ExportOptions, export_artifact  # noqa: E402
from training.npp import NPP_VARIANTS, build_npp, count_parameters  # noqa: E402

PAPER = "paper (Lu et al.): 9.42M parameters, 4.23 ms per 224×224 image on an RTX 3090"
RESOLUTIONS = {"224x224": (224, 224), "512x768": (512, 768), "1920x1080": (1080, 1920)}
REPEATS = {"224x224": 20, "512x768": 5, "1920x1080": 2}


def macs(model: nn.Module, h: int, w: int) -> int:
    """Multiply-accumulates of one forward pass at h×w (padded to 16), by forward hooks."""
    total = 0

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += out.numel() * k
        elif isinstance(mod, nn.ConvTranspose2d):
            total += inputs[0].numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, h, w), torch.zeros(1, 1))
    for hd in handles:
        hd.remove()
    return total


def rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # Linux fallback
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples RSS every 2 ms in a thread; ``peak - base`` is the memory the measured code added."""

    def __enter__(self) -> PeakRss:
        self.base = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


@dataclass
class Row:
    variant: str
    backend: str
    device: str
    resolution: str
    params: int
    gflops: float
    median_ms: float
    p90_ms: float
    min_ms: float
    peak_mb: float


def bench(directory: Path, variant: str, backend_name: str, options: dict[str, object], res: str,
          repeats: int, params: int, gflops: float) -> Row:
    h, w = RESOLUTIONS[res]
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    with PeakRss() as mem:
        backend = create_backend(backend_name, directory, **options)  # type: ignore[arg-type]
        cond = 0.6 if backend.manifest.quantization_adaptive else None
        for _ in range(2 if repeats > 3 else 1):  # warm-up: allocations, kernel selection
            backend.run(x, cond)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            backend.run(x, cond)
            times.append((time.perf_counter() - t0) * 1e3)
    desc = backend.describe()
    device = str(desc.get("device") or ("cuda" if "CUDAExecutionProvider" in str(desc.get("providers")) else "cpu"))
    p90 = float(np.percentile(times, 90))
    return Row(variant, backend_name, device, res, params, gflops, statistics.median(times), p90, min(times),
               (mem.peak - mem.base) / 2**20)


def table(rows: list[Row]) -> str:
    lines = ["| variant | backend | device | resolution (W×H) | params | GFLOPs | median ms | p90 ms | min ms | img/s "
             "| peak RSS Δ MB |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.variant} | {r.backend} | {r.device} | {r.resolution} | {r.params / 1e6:.2f}M | "
                     f"{r.gflops:.1f} | {r.median_ms:.1f} | {r.p90_ms:.1f} | {r.min_ms:.1f} | {1e3 / r.median_ms:.1f} "
                     f"| {r.peak_mb:.0f} |")
    return "\n".join(lines)


def gpu_available() -> bool:
    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["nano_qa", "lite_qa", "paper_qa", "gain_qa", "gain_qa_lite0"],
                        choices=NPP_VARIANTS.names())
    parser.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS))
    parser.add_argument("--backends", nargs="+", default=["onnxruntime", "torch"], choices=["onnxruntime", "torch"])
    parser.add_argument("--torch-resolutions", nargs="+", default=["224x224"], choices=list(RESOLUTIONS),
                        help="the torch (fallback) backend is timed only at these, to keep the run short")
    parser.add_argument("--repeat-scale", type=float, default=1.0, help="multiply the repeat counts")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "npp_latency_cpu.md")
    args = parser.parse_args(argv)

    cpu_rows: list[Row] = []
    gpu_rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            directory = Path(tmp) / variant
            export_artifact(variant, directory, options=ExportOptions(parity_kodak=0))
            model = build_npp(variant)
            params = count_parameters(model)
            for res in args.resolutions:
                h, w = RESOLUTIONS[res]
                gflops = 2 * macs(model, h, w) / 1e9
                repeats = max(1, round(REPEATS[res] * args.repeat_scale))
                for name in args.backends:
                    if name == "torch" and res not in args.torch_resolutions:
                        continue
                    row = bench(directory, variant, name, {"device": "cpu"}, res, repeats, params, gflops)
                    cpu_rows.append(row)
                    print(table([row]).splitlines()[-1], flush=True)
                if gpu_available():
                    gpu_plans: list[tuple[str, dict[str, object]]] = [("torch", {"device": "cuda", "fp16": True}),
                                                                      ("onnxruntime", {"device": "cuda"})]
                    try:
                        from training.export.tensorrt import build_engines

                        build_engines(directory, ("fp16",))
                        gpu_plans.insert(0, ("tensorrt", {"precision": "fp16"}))
                    except Exception as exc:
                        print(f"tensorrt rows skipped: {exc}", file=sys.stderr)
                    for name, opts in gpu_plans:
                        try:
                            gpu_rows.append(bench(directory, variant, name, opts, res, repeats * 5, params, gflops))
                        except Exception as exc:
                            print(f"{name} GPU row skipped: {exc}", file=sys.stderr)

    threads = torch.get_num_threads()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    header = (f"# NPP latency on CPU\n\nMachine: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} logical CPUs (torch threads {threads}; load average at the end {load}); "
              f"batch 1, float32; untrained weights (latency does not depend on them). "
              f"Command: `python benchmarks/npp_latency.py {' '.join(sys.argv[1:])}`.\n\n"
              f"Reference — {PAPER}.\n\n")
    text = header + table(cpu_rows) + "\n"
    if gpu_rows:
        text += "\n## GPU\n\n" + table(gpu_rows) + "\n"
    else:
        text += "\nGPU rows were not measured: no CUDA GPU on this machine.\n"
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
