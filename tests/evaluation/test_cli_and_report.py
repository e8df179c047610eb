"""`eval`, `bdrate` and `plot` through a tiny argparse main, and the report files they write."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from evaluation.cli import main


def _main(argv: Sequence[str]) -> int:
    return main(list(argv))


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    pytest.importorskip("shared.tasks")
    out = tmp_path_factory.mktemp("cli") / "sweep"
    cache = out.parent / "cache"
    rc = _main(["eval", "--dataset-kind", "imagenet_folder", "--dataset", str(shared_dir / "data/imagenet/val"),
                "--task", "efficientnet_lite0", "--codecs", "jpeg", "webp", "--qualities", "jpeg=5,20,50,90",
                "webp=5,20,50,90", "--limit", "4", "--out", str(out), "--cache-dir", str(cache),
                "--workers", "1", "--no-progress"])
    assert rc == 0
    return out


def test_eval_writes_results_report_and_plots(swept: Path) -> None:
    s = json.loads((swept / "sweep.json").read_text())
    assert len(s["points"]) == 8 and {p["codec"] for p in s["points"]} == {"jpeg", "webp"}
    report = swept / "report"
    md = (report / "results.md").read_text()
    assert "efficientnet_lite0" in md and "imagenet_folder" in md and '"optimize": true' in md
    assert (report / "rate_top1.png").stat().st_size > 10_000
    assert (report / "rate_kl.png").is_file()
    data = json.loads((report / "results.json").read_text())
    assert set(data["curves"]) == {"jpeg", "webp"}


def test_bdrate_command(swept: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bd"
    rc = _main(["bdrate", str(swept), "--anchor", "jpeg", "--metrics", "kl", "psnr", "--bootstrap", "50",
                "--out", str(out)])
    assert rc == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert [r["metric"] for r in res["rows"]] == ["kl", "psnr"]
    for r in res["rows"]:
        assert r["test"] == "webp"
        b = r["bootstrap"]
        assert b["n"] == 50 and (b["low"] is None or b["low"] <= b["high"])
    assert "BD-rate comparison" in capsys.readouterr().out
    # a curve against itself is exactly 0 with a zero-width interval
    rc = _main(["bdrate", str(swept), "--anchor", "jpeg", "--test", "jpeg", "--metrics", "top1", "--bootstrap",
                "20", "--out", str(tmp_path / "self")])
    row = json.loads((tmp_path / "self.json").read_text())["rows"][0]
    assert row["bootstrap"]["estimate"]["value"] == 0.0
    assert row["bootstrap"]["low"] == 0.0 and row["bootstrap"]["high"] == 0.0


def test_plot_command(swept: Path, tmp_path: Path) -> None:
    assert _main(["plot", str(swept), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "rate_psnr.png").is_file()


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _main(["eval", "--dataset-kind", "imagenet_folder", "--dataset", str(tmp_path / "nope"),
                "--task", "efficientnet_lite0", "--codecs", "jpeg", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("prepicm: error:") and "\n" not in err and "nope" in err
    rc = _main(["eval", "--dataset-kind", "imagenet_folder"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "missing --dataset" in err
    rc = _main(["bdrate", str(tmp_path / "missing"), "--anchor", "bpg"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not found" in err and "\n" not in err
    with pytest.raises(SystemExit):
        _main(["eval", "--codecs", "nocodec"])  # choices come from the codec registry


def test_anchor_drops_are_listed_once_however_many_tests() -> None:
    from evaluation.report import compare_markdown

    drop = {"rate": 2.657, "metric": 0.953, "reason": "dominated by #4"}
    est = {"values": {"pchip": 5.0, "akima": 5.1}, "overlap": [0.5, 0.9], "overlap_fraction": 0.8,
           "dropped_anchor": [drop], "dropped_test": []}
    rows = [{"anchor": "bpg", "test": t, "metric": "top5", "summary_points": est} for t in ("jpeg", "webp", "avif")]
    md = compare_markdown({"source": ["x"], "method": "pchip", "ci": 0.9, "n_boot": 0, "seed": 0, "rows": rows})
    assert md.count("top5, bpg (anchor): dropped point rate 2.657") == 1
    assert md.count("| top5 | bpg |") == 3
