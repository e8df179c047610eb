"""Learning curves of a run: ``python -m training.train.curve RUN_DIR [RUN_DIR ...] --out curve.png``.

Panels against training steps (the top axis is CPU-hours of the first run): the training loss
(a moving mean over ``--window`` steps of ``log.csv``; single batches of 4 are too noisy to read);
for runs that logged the plain codec on every batch (``log_plain``), the NPP's gain on the batch,
100·(total − plain_total)/plain_total, which the batch's content does not dominate; and the
held-out BD-rate at equal KL for each validated task (``validation.csv``), with its 90% bootstrap
interval shaded. Also prints the validation table and the mean gain per window as markdown.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


class CurveError(ValueError):
    """A run folder without the logs a curve needs."""


def read_csv(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        raise CurveError(f"{path} not found")
    with path.open() as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(f)]


def validation_tasks(rows: list[dict[str, float]]) -> list[str]:
    keys = rows[0].keys() if rows else []
    return [k[len("bd_kl_"):] for k in keys if k.startswith("bd_kl_") and not k.endswith(("_low", "_high"))]


def markdown(run: Path, rows: list[dict[str, float]]) -> str:
    tasks = validation_tasks(rows)
    head = "| step | CPU-h | " + " | ".join(f"BD-rate @KL {t} [90%]" for t in tasks) + " |"
    lines = [f"**{run.name}**", "", head, "|" + "---|" * (2 + len(tasks))]
    for r in rows:
        cells = [f"{r[f'bd_kl_{t}']:+.1f}% [{r[f'bd_kl_{t}_low']:+.1f}, {r[f'bd_kl_{t}_high']:+.1f}]" for t in tasks]
        lines.append(f"| {int(r['step'])} | {r['cpu_s'] / 3600:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def is_distillation(log: list[dict[str, float]]) -> bool:
    """A run that regressed onto distillation targets: its log has no codec rate, and its
    ``total``/``plain_total`` are the MSE to the targets of the NPP and of the identity."""
    return bool(log) and "rate_bpp" in log[0] and not any(np.isfinite(r["rate_bpp"]) for r in log)


def batch_gain(log: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Steps and per-batch gain in % of the plain codec's loss, where the run logged it."""
    rows = [r for r in log if np.isfinite(r.get("plain_total", float("nan"))) and r["plain_total"] > 0]
    steps = np.array([r["step"] for r in rows])
    return steps, np.array([100.0 * (r["total"] - r["plain_total"]) / r["plain_total"] for r in rows])


def gain_table(run: Path, log: list[dict[str, float]], window: int) -> str:
    """Mean batch gain per ``window`` steps, with its standard error (markdown)."""
    steps, gain = batch_gain(log)
    versus = "the identity, % of its MSE to the targets" if is_distillation(log) else "the plain codec, % of its loss"
    lines = [f"**{run.name}**: gain on the training batch vs {versus}", "",
             "| steps | mean gain | ± s.e. |", "|---|---|---|"]
    for start in range(0, len(gain), window):
        g = gain[start : start + window]
        se = g.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else float("nan")
        lines.append(f"| {int(steps[start])}–{int(steps[start + len(g) - 1])} | {g.mean():+.2f}% | {se:.2f} |")
    return "\n".join(lines)


def _moving_mean(values: np.ndarray, window: int) -> tuple[int, np.ndarray]:
    k = max(1, min(window, len(values)))
    return k, np.convolve(values, np.ones(k) / k, mode="valid")


def plot(runs: list[Path], out: Path, window: int = 100) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {run: read_csv(run / "log.csv") for run in runs}
    gains = {run: batch_gain(log) for run, log in logs.items()}
    with_gain = any(len(steps) for steps, _ in gains.values())
    fig, axes = plt.subplots(3 if with_gain else 2, 1, figsize=(8, 10 if with_gain else 7), sharex=True)
    ax_loss, ax_bd = axes[0], axes[-1]
    for run, log in logs.items():
        steps = np.array([r["step"] for r in log])
        k, smooth = _moving_mean(np.array([r["total"] for r in log]), window)
        ax_loss.plot(steps[k - 1 :], smooth, label=f"{run.name} (mean of {k} steps)")
        gain_steps, gain = gains[run]
        if len(gain):
            k, smooth = _moving_mean(gain, window)
            axes[1].plot(gain_steps[k - 1 :], smooth, label=f"{run.name} (mean of {k} steps)")
        val_path = run / "validation.csv"
        if val_path.is_file():
            val = read_csv(val_path)
            vs = np.array([r["step"] for r in val])
            for task in validation_tasks(val):
                mid = np.array([r[f"bd_kl_{task}"] for r in val])
                lo, hi = (np.array([r[f"bd_kl_{task}_{s}"] for r in val]) for s in ("low", "high"))
                (line,) = ax_bd.plot(vs, mid, marker="o", label=f"{run.name}: {task}")
                ax_bd.fill_between(vs, lo, hi, color=line.get_color(), alpha=0.15)
    first = read_csv(runs[0] / "log.csv")
    if first and first[-1]["step"] > 0:
        per_step = first[-1]["cpu_s"] / 3600 / first[-1]["step"]
        top = ax_loss.secondary_xaxis("top", functions=(lambda s: s * per_step, lambda h: h / per_step))
        top.set_xlabel(f"CPU-hours ({runs[0].name})")
    distill = is_distillation(first)
    ax_loss.set_ylabel("MSE to the distillation targets" if distill else "training loss (R + λD + βP) / R_ref")
    ax_loss.legend(fontsize=8)
    if with_gain:
        axes[1].axhline(0.0, color="grey", lw=0.8)
        axes[1].set_ylabel("MSE vs the identity's, same batch (%)" if distill
                           else "loss vs plain codec, same batch (%)")
        axes[1].legend(fontsize=8)
    ax_bd.axhline(0.0, color="grey", lw=0.8)
    ax_bd.set_ylabel("held-out BD-rate at equal KL (%)")
    ax_bd.set_xlabel("training step")
    if ax_bd.get_legend_handles_labels()[0]:
        ax_bd.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train.curve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--window", type=int, default=100)
    args = ap.parse_args(argv)
    try:
        plot(args.runs, args.out, args.window)
        for run in args.runs:
            if (run / "validation.csv").is_file():
                print(markdown(run, read_csv(run / "validation.csv")) + "\n")
            log = read_csv(run / "log.csv")
            if len(batch_gain(log)[0]):
                print(gain_table(run, log, args.window) + "\n")
    except CurveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
