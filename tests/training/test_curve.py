"""Learning-curve plots and tables from a run's CSV logs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.train.curve import main


def _write(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_curve_plots_and_tabulates_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "log.csv", [{"step": s, "cpu_s": 2.0 * s, "total": 2.0 - s / 100} for s in range(1, 31)])
    _write(run / "validation.csv", [{"step": s, "cpu_s": 2.0 * s, "bd_kl_lite": -s / 10, "bd_kl_lite_low": -s / 5,
                                     "bd_kl_lite_high": 0.5, "bd_agree_lite": 0.0} for s in (0, 10, 30)])
    assert main([str(run), "--out", str(tmp_path / "c.png"), "--window", "5"]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "| 30 | 0.02 | -3.0% [-6.0, +0.5] |" in out


def test_a_folder_without_logs_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2
    assert "log.csv not found" in capsys.readouterr().err


def test_a_run_that_logged_the_plain_codec_shows_its_gain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # total is 10% below the plain codec's loss for the first 10 steps, 20% below for the next 10
    rows = [{"step": s, "cpu_s": 2.0 * s, "total": (0.9 if s <= 10 else 0.8) * (1 + s % 3),
             "plain_total": 1.0 + s % 3, "rate_bpp": 0.5} for s in range(1, 21)]
    _write(run / "log.csv", rows)
    assert main([str(run), "--out", str(tmp_path / "c.png"), "--window", "10"]) == 0
    out = capsys.readouterr().out
    assert "| 1–10 | -10.00% | 0.00 |" in out and "| 11–20 | -20.00% | 0.00 |" in out
    assert "vs the plain codec" in out
    # a distillation run logs no codec rate: its gain is against the identity's error to the targets
    _write(run / "log.csv", [{**r, "rate_bpp": "nan"} for r in rows])
    assert main([str(run), "--out", str(tmp_path / "c.png"), "--window", "10"]) == 0
    assert "vs the identity" in capsys.readouterr().out
