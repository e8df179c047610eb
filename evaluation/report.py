"""Markdown + JSON tables and rate–accuracy plots for sweep results, and BD-rate comparisons.

Every table and figure names the dataset (with "pseudo ground truth" where it applies), the
model and its weights, and each codec's settings, so a number never appears without its source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.registry import EVAL_METRICS
from evaluation.results import Curve, ResultsError, load_curves
from shared.atomic import atomic_write_json
from shared.metrics.bdrate import BootstrapResult, bd_rate, bootstrap_bd_rate, check_same_images


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _resolve_label(name: str, curves: dict[str, Curve], role: str) -> str:
    """A curve label, or a codec name that starts exactly one label (``bpg`` → ``bpg[level=8]``)."""
    if name in curves:
        return name
    matches = [c for c in curves if c.split("[", 1)[0] == name]
    if len(matches) == 1:
        return matches[0]
    raise ResultsError(f"{role} curve {name!r} not found or ambiguous; curves: {', '.join(curves)}")


def source_lines(curves: dict[str, Curve]) -> list[str]:
    """Lines naming the data, the model and codec settings (shown with every table and plot)."""
    any_curve = next(iter(curves.values()))
    ds, task = any_curve.sweep.dataset, any_curve.sweep.task
    lines = [f"Dataset: {ds['describe']}", f"Model: {task['name']} ({task['kind']}), weights: {task['weights']}"]
    if ds["ground_truth"] == "pseudo":
        lines.append("Scores use PSEUDO GROUND TRUTH: the model's own prediction on the pristine image.")
    for label, c in curves.items():
        lines.append(f"{label}: {json.dumps(c.settings, sort_keys=True)}")
    lines.append("Rate: bpp = Σ file bytes × 8 / Σ original pixels over the images; PSNR: mean of per-image "
                 "RGB PSNRs, identical images counted as 100 dB.")
    return lines


def sweep_table(curves: dict[str, Curve]) -> str:
    any_curve = next(iter(curves.values()))
    metrics = [m for m in any_curve.sweep.metrics if m != "bpp"]
    out = ["# Rate–accuracy results", ""]
    out += [f"- {line}" for line in source_lines(curves)]
    pristine = any_curve.sweep.summary.get("pristine", {})
    if pristine:
        out += ["", "Pristine (no codec): " + ", ".join(f"{k} {_fmt(v)}" for k, v in pristine.items())]
    for label, c in curves.items():
        qname = c.points[0].get("quality_name", "quality")
        out += ["", f"## {label}", "", "| " + " | ".join([qname, "bpp", *metrics]) + " |",
                "|" + "---|" * (2 + len(metrics))]
        for p in c.points:
            out.append("| " + " | ".join([str(p["quality"]), _fmt(p["bpp"]), *(_fmt(p.get(m)) for m in metrics)])
                       + " |")
    return "\n".join(out) + "\n"


def plot_curves(curves: dict[str, Curve], metric: str, path: Path) -> Path:
    """One rate–metric figure (PNG, Agg) with every curve and the pristine level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = EVAL_METRICS.get(metric)
    any_curve = next(iter(curves.values()))
    ds, task = any_curve.sweep.dataset, any_curve.sweep.task
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for label, c in curves.items():
        try:
            y = c.metric(metric)
        except ResultsError:
            continue
        ax.plot(c.rates(), y, marker="o", label=label)
    pristine = any_curve.sweep.summary.get("pristine", {}).get(metric)
    if pristine is not None:
        ax.axhline(pristine, color="grey", linestyle="--", linewidth=1, label="pristine (no codec)")
    ax.set_xscale("log")
    ax.set_xlabel("rate (bits per pixel, log scale)")
    ax.set_ylabel(info.label + ("" if info.higher_is_better else " — lower is better"))
    name = Path(ds["root"]).name or ds["root"]
    pseudo = " — PSEUDO GROUND TRUTH" if ds["ground_truth"] == "pseudo" else ""
    ax.set_title(f"{task['name']} on {name} ({ds['n_images']} images){pseudo}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    caption = "\n".join(source_lines(curves)[1:])
    fig.text(0.01, 0.005, caption, fontsize=5.5, va="bottom", ha="left", wrap=True)
    fig.tight_layout(rect=(0, 0.04 + 0.018 * caption.count("\n"), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def write_sweep_report(paths: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """``results.md``, ``results.json`` and one PNG per metric for the given sweep folders."""
    curves = load_curves(list(paths))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    md = out / "results.md"
    md.write_text(sweep_table(curves))
    files["markdown"] = md
    data = {
        "source": source_lines(curves),
        "pristine": next(iter(curves.values())).sweep.summary.get("pristine", {}),
        "curves": {label: [{k: v for k, v in p.items()} for p in c.points] for label, c in curves.items()},
    }
    atomic_write_json(out / "results.json", data, indent=1)
    files["json"] = out / "results.json"
    any_curve = next(iter(curves.values()))
    for metric in any_curve.sweep.metrics:
        if metric == "bpp":
            continue
        files[f"plot_{metric}"] = plot_curves(curves, metric, out / f"rate_{metric}.png")
    return files


# ----------------------------------------------------------------------------- BD-rate


def compare(
    paths: Sequence[str | Path],
    anchor: str,
    tests: Sequence[str] | None,
    metrics: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.90,
    method: str = "pchip",
) -> dict[str, Any]:
    """BD-rate of each test curve against the anchor for each metric, with paired bootstrap."""
    curves = load_curves(list(paths))
    anchor = _resolve_label(anchor, curves, "anchor")
    test_labels = [_resolve_label(t, curves, "test") for t in tests] if tests else [c for c in curves if c != anchor]
    for t in test_labels:
        check_same_images(curves[anchor].image_ids(), curves[t].image_ids(), anchor, t)
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        info = EVAL_METRICS.get(metric)
        a = curves[anchor]
        for t in test_labels:
            c = curves[t]
            row: dict[str, Any] = {"anchor": anchor, "test": t, "metric": metric,
                                   "higher_is_better": info.higher_is_better}
            try:
                ra, ma, rt, mt = a.rates(), a.metric(metric), c.rates(), c.metric(metric)
            except ResultsError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
            row["summary_points"] = bd_rate(ra, ma, rt, mt, method, higher_is_better=info.higher_is_better).to_json()
            if n_boot > 0:
                boot: BootstrapResult = bootstrap_bd_rate(
                    a.per_image(metric), c.per_image(metric), method=method,
                    higher_is_better=info.higher_is_better, n=n_boot, seed=seed, ci=ci,
                )
                row["bootstrap"] = boot.to_json()
            rows.append(row)
    return {"source": source_lines(curves), "method": method, "ci": ci, "n_boot": n_boot, "seed": seed,
            "rows": rows}


def compare_markdown(result: dict[str, Any]) -> str:
    out = ["# BD-rate comparison", ""]
    out += [f"- {line}" for line in result["source"]]
    out += ["", f"BD-rate = rate change of the test at equal metric (negative = fewer bits), log-rate "
                f"interpolated against the metric over the overlapping range, {result['method'].upper()} "
                f"(Akima cross-check). Interval: {result['ci']:.0%} paired bootstrap over images, "
                f"n={result['n_boot']}, seed {result['seed']}. Lower-is-better metrics are negated before "
                "fitting. Points dropped as non-monotonic are listed below the table.", "",
            "| metric | anchor | test | BD-rate (PCHIP) | interval | Akima | overlap | notes |",
            "|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for r in result["rows"]:
        if "error" in r:
            out.append(f"| {r['metric']} | {r['anchor']} | {r['test']} | — | — | — | — | {r['error']} |")
            continue
        est = r.get("bootstrap", {}).get("estimate") or r["summary_points"]
        vals = est["values"]
        interval = "—"
        if "bootstrap" in r:
            b = r["bootstrap"]
            interval = f"[{_pct(b['low'])}, {_pct(b['high'])}]"
            if b.get("n_failed"):
                interval += f" ({b['n_failed']} failed)"
        ov = est.get("overlap")
        overlap = "—" if not ov else f"{ov[0]:.4g}…{ov[1]:.4g} ({est['overlap_fraction']:.0%})"
        out.append(f"| {r['metric']} | {r['anchor']} | {r['test']} | {_pct(vals.get('pchip'))} | {interval} | "
                   f"{_pct(vals.get('akima'))} | {overlap} | {est.get('note') or ''} |")
        for side in ("anchor", "test"):
            for p in est.get(f"dropped_{side}", []):
                notes.append(f"- {r['metric']}, {r[side]} ({side}): dropped point rate {p['rate']:.4g}, "
                             f"metric {p['metric']:.4g} — {p['reason']}")
    if notes:
        # the anchor's dropped points recur once per test codec; list each once
        out += ["", "Dropped (non-monotonic) points on the full-data curves:", *dict.fromkeys(notes)]
    return "\n".join(out) + "\n"


def _pct(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{float(v):+.2f}%"


def default_bd_metrics(paths: Sequence[str | Path]) -> list[str]:
    curves = load_curves(list(paths))
    ms = next(iter(curves.values())).sweep.metrics
    return [m for m in ms if m not in ("bpp", "psnr", "msssim", "ap75")]


__all__ = ["compare", "compare_markdown", "default_bd_metrics", "plot_curves", "sweep_table",
           "write_sweep_report"]
