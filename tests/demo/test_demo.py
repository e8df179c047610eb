"""The main job (``python -m demo``) as a real process: it starts the cloud and the edge, streams
frames through them, prints results and a summary, and leaves no process behind — also when
interrupted or when a service fails to start."""

from __future__ import annotations

import ast
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.main import main, percentile, shipped_npp

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process sessions read from /proc")


def _sessions_alive(leaders: list[int]) -> list[int]:
    """Processes still in the sessions the services led (the services, their encoder workers)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in leaders:  # field 6 of stat: the session id
            alive.append(int(stat.parent.name))
    return alive


def _pids(output: str) -> list[int]:
    found = [int(p) for p in re.findall(r"\(pid (\d+)\)", output)]
    assert len(found) == 2, output
    return found


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "demo", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@linux_only
def test_two_frames_through_both_services_and_nothing_survives() -> None:
    proc = _demo("--frames", "2")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    rows = [line for line in out.splitlines() if line.startswith("| demo-cam-0 |")]
    assert len(rows) == 2, out
    cells = rows[0].split(" | ")
    assert int(cells[3]) > 0 and float(cells[4]) > 0 and cells[5] == "32"  # bits, bpp, QP
    assert "frames: 2 sent, 2 analysed by the cloud, 0 not" in out and "p50" in out and "p99" in out
    if shipped_npp() is None:
        assert "no trained NPP shipped yet: plain BPG" in out
        assert "bits saved vs plain codec: 0" in out
    else:  # the shipped NPP runs, and every frame is also encoded plain to measure the saving
        assert "edge runs NPP npp-" in out and "bits saved vs plain codec at the same QP:" in out
    assert "services stopped (edge ended by SIGTERM, cloud ended by SIGTERM)" in out, out
    assert "Traceback" not in out
    assert _sessions_alive(_pids(out)) == []


@linux_only
def test_ctrl_c_stops_the_services() -> None:
    proc = _demo("--frames", "200", "--tasks", "efficientnet_lite0")
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # interrupt once frames flow
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
        if line.startswith("| demo-cam-0 | 0 |"):
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "interrupted; services stopped" in out and "Traceback" not in out, out
    assert _sessions_alive(_pids(out)) == []


@linux_only
def test_a_service_that_cannot_start_is_one_error_line_and_stops_the_other() -> None:
    proc = _demo("--frames", "1", "--tasks", "no_such_task")
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 1, out
    assert re.search(r"demo: error: the cloud exited with status 2", out), out
    assert "services stopped" in out
    assert _sessions_alive(_pids(out)) == []


def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--images", str(tmp_path / "missing")]) == 2
    assert main(["--images", str(tmp_path)]) == 2  # a folder without images
    assert main(["--quality", "99"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("demo: error: ") for line in err)


def test_only_a_valid_trained_artifact_counts_as_shipped(tmp_path: Path) -> None:
    from shared.manifest import load_manifest, write_manifest
    from training.export import ExportOptions, export_artifact

    assert shipped_npp(tmp_path / "missing") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    assert shipped_npp(tmp_path / "broken") is None
    export_artifact("test_tiny", tmp_path / "npp", options=ExportOptions(parity_kodak=0))
    assert shipped_npp(tmp_path / "npp") is None  # exported untrained
    m = load_manifest(tmp_path / "npp")
    write_manifest(m.model_copy(update={"training": m.training.model_copy(update={"trained": True,
                                                                                  "run_id": "r"})}),
                   tmp_path / "npp")
    assert shipped_npp(tmp_path / "npp") == tmp_path / "npp"


def test_percentile_is_nearest_rank() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0 and percentile([5.0], 99) == 5.0


def test_the_demo_imports_only_shared_among_the_project_packages() -> None:
    project = {"edge", "cloud", "training", "evaluation"}
    for path in (ROOT / "demo").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            assert not {n.split(".")[0] for n in names} & project, f"{path.name} imports {names}"


@linux_only
def test_an_npp_artifact_runs_and_bits_saved_are_measured(tmp_path: Path) -> None:
    from training.export import ExportOptions, export_artifact

    artifact = tmp_path / "npp"
    export_artifact("test_tiny", artifact, options=ExportOptions(parity_kodak=0))
    proc = _demo("--frames", "1", "--tasks", "efficientnet_lite0", "--npp", str(artifact))
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert "edge runs NPP npp-test_tiny-UNTRAINED-" in out, out
    row = next(line for line in out.splitlines() if line.startswith("| demo-cam-0 | 0 |"))
    assert row.split(" | ")[10] != "-"  # the preprocess stage ran
    assert re.search(r"bits saved vs plain codec at the same QP: -?\d+ of \d+ \([+-]\d+\.\d%\) over 1 frames", out), out
    assert _sessions_alive(_pids(out)) == []
