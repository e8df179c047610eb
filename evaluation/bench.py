"""Codec benchmark: every codec at a range of qualities over a folder of images.

Every image goes through :mod:`shared.pipeline` (the same encode and decode the sweep and the
services use). Per point: bpp = Σ file bits / Σ pixels (:mod:`shared.metrics.rate`), PSNR = mean
of per-image RGB PSNRs capped at 100 dB (:mod:`shared.metrics.image`), mean MS-SSIM, median
encode and decode milliseconds.
Outputs: JSON (per image and aggregated), a markdown table, a rate–distortion PNG and each
codec's BD-rate against BPG at equal PSNR (bjontegaard package, PCHIP).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.atomic import atomic_write_text
from shared.codecs import ladders
from shared.codecs.registry import get_codec
from shared.imageio import list_images, read_rgb
from shared.metrics.image import capped_psnr, mean_psnr, ms_ssim
from shared.metrics.rate import bits_per_pixel
from shared.pipeline import EncodePipeline, decode


@dataclass
class PointResult:
    image: str
    codec: str
    quality: int
    bytes: int
    pixels: int
    bpp: float
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float


@dataclass
class BenchResult:
    images: list[str]
    codecs: dict[str, dict[str, Any]]  # name → settings
    points: list[PointResult] = field(default_factory=list)
    conditions: dict[str, Any] = field(default_factory=dict)

    def curve(self, codec: str) -> list[dict[str, float]]:
        """Mean bpp / PSNR / MS-SSIM and median times per quality, in increasing-bpp order."""
        rows = []
        for q in sorted({p.quality for p in self.points if p.codec == codec}):
            pts = [p for p in self.points if p.codec == codec and p.quality == q]
            rows.append({
                "quality": q,
                "bpp": bits_per_pixel([p.bytes * 8 for p in pts], [p.pixels for p in pts]),
                "psnr": mean_psnr(p.psnr for p in pts),
                "ms_ssim": statistics.fmean(p.ms_ssim for p in pts),
                "encode_ms": statistics.median(p.encode_ms for p in pts),
                "decode_ms": statistics.median(p.decode_ms for p in pts),
                "n": len(pts),
            })
        return sorted(rows, key=lambda r: r["bpp"])

    def to_json(self) -> dict[str, Any]:
        return {
            "conditions": self.conditions,
            "images": self.images,
            "codecs": self.codecs,
            "curves": {c: self.curve(c) for c in self.codecs},
            "bd_rate_vs_bpg_psnr": self.bd_rates(),
            "points": [asdict(p) for p in self.points],
        }

    def bd_rates(self, anchor: str = "bpg") -> dict[str, dict[str, Any]]:
        from shared.metrics.bdrate import BDRateError, bd_rate

        if anchor not in self.codecs:
            return {}
        a = self.curve(anchor)
        out: dict[str, dict[str, Any]] = {}
        for codec in self.codecs:
            if codec == anchor:
                continue
            t = self.curve(codec)
            try:
                res = bd_rate([r["bpp"] for r in a], [r["psnr"] for r in a],
                              [r["bpp"] for r in t], [r["psnr"] for r in t], method="pchip")
                out[codec] = res.to_json()
            except BDRateError as exc:
                out[codec] = {"value": None, "error": str(exc)}
        return out


def run_bench(
    image_paths: Sequence[Path],
    qualities: dict[str, list[int]],
    codec_options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BenchResult:
    """Encode and decode every image with every codec at every quality (sequentially: timings
    are per-call wall-clock on an otherwise idle machine)."""
    pipelines = {name: EncodePipeline(get_codec(name, **(codec_options or {}).get(name, {}))) for name in qualities}
    codecs = {name: p.codec for name, p in pipelines.items()}
    result = BenchResult(
        images=[p.name for p in image_paths],
        codecs={name: {"quality": qualities[name], **c.settings(), "decoder": c.decoder_id()}
                for name, c in codecs.items()},
        conditions=_conditions(),
    )
    for path in image_paths:
        rgb = read_rgb(path)
        pixels = rgb.shape[0] * rgb.shape[1]
        for name, pipe in pipelines.items():
            for q in qualities[name]:
                enc = pipe.encode(rgb, q)
                dec = decode(enc.bitstream, name)
                result.points.append(PointResult(
                    path.name, name, q, len(enc.bitstream), pixels, enc.bpp, capped_psnr(rgb, dec.image),
                    ms_ssim(rgb, dec.image), enc.timings_s["encode"] * 1e3, dec.timings_s["decode"] * 1e3,
                ))
                if progress:
                    progress(1)
    return result


def _conditions() -> dict[str, Any]:
    import av
    import PIL

    return {
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "av": av.__version__,
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }


def default_images(limit: int | None = None) -> list[Path]:
    """../shared/data/kodak when present, else sample photos shipped inside installed packages."""
    from shared.paths import shared_data_dir

    kodak = shared_data_dir() / "data" / "kodak"
    paths = list_images(kodak) if kodak.is_dir() else packaged_sample_images()
    return paths[:limit] if limit else paths


def packaged_sample_images() -> list[Path]:
    """Photos that ship inside installed wheels (matplotlib's sample data)."""
    import matplotlib

    root = Path(matplotlib.get_data_path()) / "sample_data"
    names = ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"]
    return [root / n for n in names if (root / n).is_file()]


def markdown_table(result: BenchResult) -> str:
    lines = [
        "| codec | quality | bpp | PSNR (dB) | MS-SSIM | encode ms (median) | decode ms (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for codec in result.codecs:
        for r in result.curve(codec):
            lines.append(
                f"| {codec} | {r['quality']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} "
                f"| {r['encode_ms']:.1f} | {r['decode_ms']:.1f} |"
            )
    bd = result.bd_rates()
    if bd:
        lines += ["", "BD-rate against BPG at equal PSNR (PCHIP; negative = fewer bits than BPG):", "",
                  "| codec | BD-rate | PSNR range used (dB) | notes |", "|---|---|---|---|"]
        for codec, b in bd.items():
            val = b.get("value")
            txt = "n/a" if val is None else f"{val:+.1f}%"
            akima = (b.get("values") or {}).get("akima")
            rng = b.get("overlap")
            rng_txt = f"{rng[0]:.2f}–{rng[1]:.2f}" if rng else ""
            notes = [b.get("error") or b.get("note") or ""]
            if akima is not None:
                notes.append(f"Akima {akima:+.1f}%")
            dropped = len(b.get("dropped_anchor", [])) + len(b.get("dropped_test", []))
            if dropped:
                notes.append(f"{dropped} non-monotonic point(s) dropped")
            lines.append(f"| {codec} | {txt} | {rng_txt} | {'; '.join(n for n in notes if n)} |")
    return "\n".join(lines) + "\n"


def plot(result: BenchResult, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for codec in result.codecs:
        c = result.curve(codec)
        bpp = [r["bpp"] for r in c]
        axes[0].plot(bpp, [r["psnr"] for r in c], marker="o", label=codec)
        axes[1].plot(bpp, [r["ms_ssim"] for r in c], marker="o", label=codec)
    axes[0].set_ylabel("RGB PSNR (dB)")
    axes[1].set_ylabel("MS-SSIM (RGB mean)")
    for ax in axes:
        ax.set_xlabel("bits per pixel (Σ file bytes × 8 / Σ pixels)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(result: BenchResult, out_dir: Path, title: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "markdown": out_dir / "bench.md", "plot": out_dir / "rd.png"}
    atomic_write_text(paths["json"], json.dumps(result.to_json(), indent=1) + "\n")
    settings = "; ".join(
        f"{c}: " + ", ".join(f"{k}={v}" for k, v in s.items() if k != "quality") for c, s in result.codecs.items()
    )
    header = f"# {title}\n\nCodec settings — {settings}\n\n"
    paths["markdown"].write_text(header + markdown_table(result))
    plot(result, paths["plot"], title)
    return paths


def qualities_for(codecs: Sequence[str], quick: bool) -> dict[str, list[int]]:
    return {c: ladders.quick(ladders.PHOTO[c]) if quick else list(ladders.PHOTO[c]) for c in codecs
            if c in ladders.PHOTO}

