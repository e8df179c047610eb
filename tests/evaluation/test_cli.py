"""The `prepicm` command line: codec commands and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.cli import main
from shared.imageio import read_rgb, write_png


@pytest.fixture()
def png(tmp_path: Path, kodak_image: np.ndarray) -> Path:
    path = tmp_path / "in.png"
    write_png(path, kodak_image[:61, :83])
    return path


def test_encode_info_decode(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.bpg"
    assert main(["encode", str(png), "-c", "bpg", "-q", "33", "-O", "level=4", "-o", str(out)]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["codec"], info["width"], info["height"], info["pixel_format"]) == ("bpg", 83, 61, "420")
    assert main(["decode", str(out), "-o", str(tmp_path / "y.png")]) == 0
    assert read_rgb(tmp_path / "y.png").shape == (61, 83, 3)


def test_codecs_lists_availability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codecs", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"bpg", "jpeg", "webp", "avif", "jxl", "vvc"} <= set(rows)
    assert rows["bpg"]["available"]


def test_bench_writes_table_json_and_plot(png: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", "--images", str(png.parent), "--codecs", "bpg", "jpeg", "--qualities", "bpg=30,36,42,48",
            "jpeg=20,40,60,80", "--bpg-level", "3", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    data = json.loads((out / "bench.json").read_text())
    assert [r["quality"] for r in data["curves"]["bpg"]] == [48, 42, 36, 30]
    assert "jpeg" in data["bd_rate_vs_bpg_psnr"]
    assert (out / "rd.png").stat().st_size > 10_000
    assert "| bpg | 30 |" in (out / "bench.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "missing.png", "-c", "bpg"], "image not found: missing.png"),
        (["decode", "missing.bpg", "-o", "x.png"], "file not found: missing.bpg"),
        (["encode", "{png}", "-c", "bpg", "-q", "99"], "qp 99 is outside 0..51"),
        (["encode", "{png}", "-c", "bpg", "-O", "level=12"], "compression level 12"),
        (["encode", "{png}", "-c", "bpg", "-O", "colour=red"], "bad option for codec 'bpg'"),
    ],
)
def test_errors_are_one_line_and_nonzero(args: list[str], message: str, png: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main([a.replace("{png}", str(png)) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_corrupt_file_through_the_installed_entry_point(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpg"
    bad.write_bytes(b"BPG\xfb\x20\x00\x86\x00")
    proc = subprocess.run([sys.executable, "-m", "evaluation.cli", "decode", str(bad), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("prepicm: error:") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
