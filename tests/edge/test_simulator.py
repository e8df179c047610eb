"""The camera simulator against a real edge served on loopback (uvicorn in a thread)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.main import create_app
from edge.simulator import main
from tests.edge.conftest import png_bytes
from tests.edge.receiver import ThreadedServer, free_port


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory, small_frame: np.ndarray) -> Path:
    d = tmp_path_factory.mktemp("frames")
    for i in range(3):
        (d / f"f{i}.png").write_bytes(png_bytes(np.ascontiguousarray(np.roll(small_frame, 8 * i, axis=1))))
    return d


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory, small_frame: np.ndarray) -> Path:
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "clip.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = small_frame.shape[1], small_frame.shape[0], "yuv444p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(small_frame, 4 * i, axis=0)),
                                               format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def edge_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from edge.core.config import EdgeSettings
    from tests.edge.conftest import FAST

    settings = EdgeSettings(**{**FAST, "SPOOL_DIR": tmp_path_factory.mktemp("spool"),  # type: ignore[arg-type]
                               "CLOUD_URL": f"http://127.0.0.1:{free_port()}", "UPLOAD_RETRIES": 0,
                               "CAMERA_TOKEN": "cam"})
    with ThreadedServer(create_app(settings)) as url:
        yield url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object] | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_folder_two_cameras_bitstreams_back(edge_url: str, frames_dir: Path, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    code, summary, err = _run(capsys, str(frames_dir), "--url", edge_url, "--cameras", "2", "--fps", "20",
                              "--frames", "3", "--no-forward", "--token", "cam", "--summary-every", "0.05",
                              "--json", str(tmp_path / "s.json"))
    assert code == 0, err
    assert summary is not None and summary["sent"] == 6 and summary["ok"] == 6 and summary["errors"] == 0
    assert 0 < summary["mean_bpp"] < 24  # type: ignore[operator]
    assert summary["latency_ms"]["p50"] > 0  # type: ignore[index]
    assert json.loads((tmp_path / "s.json").read_text()) == summary
    assert "mean_bpp=" in err and "p99=" in err  # the live line


def test_forwarded_frames_spool_while_the_cloud_is_down(edge_url: str, frames_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, _ = _run(capsys, str(frames_dir), "--url", edge_url, "--fps", "20", "--frames", "2",
                            "--token", "cam", "--target-bpp", "0.5", "--summary-every", "0", "--camera-prefix", "fw")
    assert code == 0 and summary is not None
    assert summary["spooled"] == 2 and summary["delivered"] == 0


def test_video_file(edge_url: str, video_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, err = _run(capsys, str(video_file), "--url", edge_url, "--fps", "20", "--frames", "6",
                              "--no-forward", "--token", "cam", "--summary-every", "0", "--camera-prefix", "vid")
    assert code == 0, err
    assert summary is not None and summary["ok"] == 4  # the clip has 4 frames (no --loop)
    code, summary, _ = _run(capsys, str(video_file), "--url", edge_url, "--fps", "30", "--frames", "6", "--loop",
                            "--max-in-flight", "6", "--no-forward", "--token", "cam", "--summary-every", "0",
                            "--camera-prefix", "vid2")
    assert code == 0 and summary is not None and summary["ok"] == 6


def test_errors_are_counted_and_no_success_exits_1(edge_url: str, frames_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, _ = _run(capsys, str(frames_dir), "--url", edge_url, "--fps", "20", "--frames", "2",
                            "--summary-every", "0")  # no camera token
    assert code == 1 and summary is not None and summary["error_kinds"] == {"401:unauthorized": 2}
    code, summary, _ = _run(capsys, str(frames_dir), "--url", f"http://127.0.0.1:{free_port()}", "--frames", "1",
                            "--summary-every", "0")
    assert code == 1 and summary is not None and summary["error_kinds"] == {"ConnectError": 1}


@pytest.mark.parametrize("argv", [["--fps", "0"], ["--cameras", "-2"], ["--quality", "30", "--target-bpp", "1"],
                                  ["--url", "ftp://x"], ["--frames", "many"]])
def test_bad_arguments_one_line_nonzero(frames_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        code = main([str(frames_dir), *argv])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge.simulator: error:")


def test_bad_sources_one_line_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notavideo.mp4").write_bytes(b"hello")
    for source in (tmp_path / "missing", tmp_path / "empty", tmp_path / "notavideo.mp4"):
        assert main([str(source), "--summary-every", "0"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edge.simulator: error:"), err


def test_video_without_pyav_names_the_extra(video_file: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # import av → ImportError, as if not installed
    assert main([str(video_file), "--summary-every", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prepicm[edge]" in err[0]
