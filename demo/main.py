"""``python -m demo``: start the cloud and the edge locally, stream sample photos through the edge
(with the NPP the project ships, :func:`shared.paths.shipped_npp_dir`, when it is committed and
trained, or the one given with ``--npp``; else the plain codec), print each frame's result and a
summary, and stop both services.

    python -m demo                                  # 8 Kodak photos (or packaged samples), 1 camera
    python -m demo --images DIR --frames 4 --cameras 2 --quality 37

Exit status: 0 when every frame was analysed by the cloud, 1 when some were not (or a service
failed), 2 for bad arguments, 130 on Ctrl-C. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import httpx

from demo.services import LocalServices, ServiceError
from shared.imageio import list_images
from shared.manifest import ManifestError, load_manifest
from shared.paths import repo_root, shared_data_dir, shipped_npp_dir
from shared.wire import ENCODE_PATH, EncodeResult

DEFAULT_TASKS = ("efficientnet_lite0", "yolov5n")
NO_NPP = "no trained NPP shipped yet: plain BPG"
_MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
          ".tif": "image/tiff", ".tiff": "image/tiff", ".webp": "image/webp", ".ppm": "image/x-portable-pixmap"}
#: edge stages then cloud stages, as the per-frame table and the summary show them
EDGE_STAGES = ("decode_input", "preprocess", "encode", "upload")
#: detections counted at YOLOv5's usual display threshold; the cloud's detector keeps everything
#: above 0.001 (the setting mAP is measured with), which is not what a person wants counted
DETECTION_MIN_SCORE = 0.25
CLOUD_STAGES = ("decode", "queue")


class DemoError(Exception):
    """A problem the user can fix (arguments, images): one line, exit 2."""


# -- inputs ----------------------------------------------------------------------------------------------


def packaged_sample_images() -> list[Path]:
    """Photos that ship inside an installed wheel (matplotlib's sample data), for machines
    without the shared Kodak folder."""
    try:
        import matplotlib
    except ImportError:
        return []
    root = Path(matplotlib.get_data_path()) / "sample_data"
    names = ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"]
    return [root / n for n in names if (root / n).is_file()]


def default_images() -> tuple[list[Path], str]:
    """../shared/data/kodak when present, else packaged sample photos; with a description."""
    kodak = shared_data_dir() / "data" / "kodak"
    if kodak.is_dir():
        found = list_images(kodak)
        if found:
            return found, str(kodak)
    return packaged_sample_images(), "photos shipped in installed packages (matplotlib sample data)"


def shipped_npp(directory: Path | None = None) -> Path | None:
    """The shipped NPP (default :func:`shared.paths.shipped_npp_dir`) when its manifest is valid
    and says it was trained; None otherwise (an untrained network is no NPP to demonstrate)."""
    d = directory or shipped_npp_dir()
    try:
        return d if load_manifest(d).training.trained else None
    except ManifestError:
        return None


# -- results ---------------------------------------------------------------------------------------------


@dataclass
class FrameRow:
    camera: str
    frame: int
    image: str
    latency_s: float
    result: EncodeResult | None = None
    error: str | None = None

    @property
    def analysed(self) -> bool:
        return self.result is not None and self.result.delivered and self.result.cloud is not None


@dataclass
class Run:
    rows: list[FrameRow] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100): a value that occurred, never an interpolation."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{1e3 * seconds:.0f}"


def _task_columns(tasks: Sequence[str]) -> list[str]:
    return [f"{t} ms" for t in tasks]


def table_header(tasks: Sequence[str]) -> str:
    cols = ["camera", "frame", "image", "bits", "bpp", "QP", "top-1", "score",
            f"detections ≥ {DETECTION_MIN_SCORE:g}",
            *(f"{s} ms" for s in EDGE_STAGES), *(f"cloud {s} ms" for s in CLOUD_STAGES), *_task_columns(tasks),
            "end-to-end ms"]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def table_row(row: FrameRow, tasks: Sequence[str]) -> str:
    n_cols = 9 + len(EDGE_STAGES) + len(CLOUD_STAGES) + len(tasks) + 1
    if row.result is None:
        cells = [row.camera, str(row.frame), row.image, f"error: {row.error}"]
        return "| " + " | ".join(cells + [""] * (n_cols - len(cells))) + " |"
    r = row.result
    top1, score, dets = "-", "-", "-"
    cloud = r.cloud
    task_ms = ["-"] * len(tasks)
    if cloud is not None:
        for t in cloud.results:
            if t.kind == "classification" and top1 == "-" and t.output.get("top"):
                best = t.output["top"][0]
                top1, score = str(best["name"]), f"{float(best['score']):.3f}"
            elif "detections" in t.output and dets == "-":
                found = [d for d in t.output["detections"] if float(d["score"]) >= DETECTION_MIN_SCORE]
                best_det = max(found, key=lambda d: float(d["score"]), default=None)
                dets = str(len(found)) + ("" if best_det is None else f" (best: {best_det['name']})")
            if t.task in tasks:
                task_ms[list(tasks).index(t.task)] = _ms(t.seconds)
    status = "" if r.delivered else " (spooled)"
    cells = [row.camera, str(row.frame), row.image + status, f"{r.bits}", f"{r.bpp:.4f}", str(r.quality), top1,
             score, dets, *(_ms(r.timings_s.get(s)) for s in EDGE_STAGES),
             *(_ms(None if cloud is None else cloud.timings_s.get(s)) for s in CLOUD_STAGES), *task_ms,
             _ms(row.latency_s)]
    return "| " + " | ".join(cells) + " |"


def summary_lines(run: Run, npp_id: str | None, tasks: Sequence[str]) -> list[str]:
    ok = [r for r in run.rows if r.analysed]
    elapsed = (run.finished or time.perf_counter()) - run.started
    lines = [f"frames: {len(run.rows)} sent, {len(ok)} analysed by the cloud, {len(run.rows) - len(ok)} not "
             f"({elapsed:.1f} s, {len(ok) / max(elapsed, 1e-9):.2f} frames/s)"]
    if not ok:
        return lines
    results = [r.result for r in ok if r.result is not None]
    bits = sum(r.bits for r in results)
    pixels = sum(r.width * r.height for r in results)
    lines.append(f"mean bpp: {bits / pixels:.4f} (Σ bits / Σ pixels over {len(results)} frames; "
                 f"mean of per-frame bpp {statistics.fmean(r.bpp for r in results):.4f})")
    if npp_id is None:
        lines.append("bits saved vs plain codec: 0 (no NPP ran: the plain codec is all there is to compare)")
    else:
        paired = [r for r in results if r.plain_bits is not None]
        if paired:
            plain = sum(r.plain_bits or 0 for r in paired)
            saved = plain - sum(r.bits for r in paired)
            lines.append(f"bits saved vs plain codec at the same QP: {saved} of {plain} "
                         f"({100 * saved / max(plain, 1):+.1f}%) over {len(paired)} frames encoded both ways "
                         f"(NPP {npp_id})")
        else:
            lines.append(f"bits saved vs plain codec: unknown (no frame was also encoded plain; NPP {npp_id})")
    lat = [r.latency_s for r in ok]
    lines.append(f"end-to-end latency (camera → edge → cloud → camera): p50 {_ms(percentile(lat, 50))} ms, "
                 f"p99 {_ms(percentile(lat, 99))} ms")
    stages: list[tuple[str, list[float]]] = []
    for s in EDGE_STAGES:
        stages.append((f"edge {s}", [r.timings_s[s] for r in results if s in r.timings_s]))
    for s in CLOUD_STAGES:
        stages.append((f"cloud {s}", [r.cloud.timings_s[s] for r in results if r.cloud and s in r.cloud.timings_s]))
    for t in tasks:
        stages.append((f"cloud {t}", [x.seconds for r in results if r.cloud for x in r.cloud.results
                                      if x.task == t]))
    parts = [f"{name} {_ms(percentile(v, 50))}/{_ms(percentile(v, 99))}" for name, v in stages if v]
    lines.append("per stage p50/p99 ms: " + ", ".join(parts))
    return lines


# -- streaming -------------------------------------------------------------------------------------------


async def _camera(client: httpx.AsyncClient, index: int, paths: list[Path], frames: int, tasks: Sequence[str],
                  run: Run, stop: asyncio.Event) -> None:
    camera = f"demo-cam-{index}"
    for k in range(frames):
        if stop.is_set():
            return
        path = paths[(index + k) % len(paths)]
        params: dict[str, Any] = {"camera_id": camera, "frame_id": k, "captured_at": time.time(),
                                  "tasks": ",".join(tasks)}
        media = _MEDIA.get(path.suffix.lower(), "application/octet-stream")
        t0 = time.perf_counter()
        row = FrameRow(camera, k, path.name, 0.0)
        try:
            r = await client.post(ENCODE_PATH, params=params, content=path.read_bytes(),
                                  headers={"content-type": media})
            row.latency_s = time.perf_counter() - t0
            if r.status_code >= 400:
                try:
                    body = r.json()
                    row.error = f"{r.status_code} {body.get('error')}: {body.get('message')}"
                except ValueError:
                    row.error = f"HTTP {r.status_code}"
            else:
                row.result = EncodeResult.model_validate(r.json())
        except httpx.HTTPError as exc:
            row.latency_s = time.perf_counter() - t0
            row.error = f"{type(exc).__name__}: {exc}"
        run.rows.append(row)
        print(table_row(row, tasks), flush=True)


async def stream(edge_url: str, paths: list[Path], cameras: int, frames: int, tasks: Sequence[str],
                 timeout_s: float) -> Run:
    """Each camera sends its frames one after another (one in flight); the cameras run at once."""
    run = Run()
    limits = httpx.Limits(max_connections=cameras)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C sets a flag every camera checks before its next frame, and cancels the frames in
    # flight. asyncio.run's own handler only cancels, and a cancellation that arrives while the
    # HTTP client is inside a shielded section can be lost, leaving the demo streaming on.
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
        handled = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no Unix signals
        handled = False
    try:
        async with httpx.AsyncClient(base_url=edge_url, timeout=timeout_s, limits=limits) as client:
            cams = asyncio.gather(*(_camera(client, i, paths, frames, tasks, run, stop) for i in range(cameras)))
            interrupted = asyncio.ensure_future(stop.wait())
            waiters: set[asyncio.Future[Any]] = {cams, interrupted}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            interrupted.cancel()
            if stop.is_set():
                cams.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cams
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    if stop.is_set():
        raise KeyboardInterrupt
    run.finished = time.perf_counter()
    return run


# -- command line ----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        self.exit(2, f"demo: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m demo", description=__doc__.split("\n\n")[0],
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, help="folder of photos (default: ../shared/data/kodak, else packaged "
                                                "sample photos)")
    ap.add_argument("--frames", type=_positive_int, default=8, help="frames per camera (default 8)")
    ap.add_argument("--cameras", type=_positive_int, default=1, help="cameras sending at once (default 1)")
    ap.add_argument("--quality", type=int, default=32, help="BPG QP (default 32)")
    shipped = shipped_npp_dir().relative_to(repo_root())
    ap.add_argument("--npp", type=Path, help=f"an exported NPP folder (default: the shipped one, {shipped}, "
                                             "when it is there and trained)")
    ap.add_argument("--no-npp", action="store_true", help="plain codec even if an NPP is shipped")
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                    help=f"cloud task models, comma-separated (default {','.join(DEFAULT_TASKS)})")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per frame request (default 120)")
    return ap


def _status(code: int | None) -> str:
    if code is None:
        return "not started"
    if code < 0:
        return f"ended by {signal.Signals(-code).name}"  # uvicorn re-raises the SIGTERM it handled
    return f"exit status {code}"


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: the services are stopped on the way out


def run_demo(args: argparse.Namespace) -> int:
    if args.images is not None:
        if not args.images.is_dir():
            raise DemoError(f"--images {args.images}: not a folder")
        paths, source = list_images(args.images), str(args.images)
    else:
        paths, source = default_images()
    if not paths:
        raise DemoError(f"no images found in {source}")
    if args.npp is not None and args.no_npp:
        raise DemoError("give --npp or --no-npp, not both")
    if not 0 <= args.quality <= 51:
        raise DemoError(f"--quality must be a BPG QP in 0..51, got {args.quality}")
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    if not tasks:
        raise DemoError("--tasks names no task model")
    npp = None if args.no_npp else (args.npp or shipped_npp())
    if npp is not None:
        try:
            load_manifest(npp)
        except ManifestError as exc:
            raise DemoError(f"--npp {npp}: {str(exc).splitlines()[0]}") from None

    distinct = len({(i + k) % len(paths) for i in range(args.cameras) for k in range(args.frames)})
    print(f"demo: {args.cameras} camera(s) × {args.frames} frame(s) from {source} "
          f"({distinct} distinct image(s)), BPG QP {args.quality}, cloud tasks {','.join(tasks)}", flush=True)
    if npp is not None:
        print(f"demo: NPP: {npp}", flush=True)
    else:
        print(f"demo: {'--no-npp: plain BPG' if args.no_npp else NO_NPP}", flush=True)
    with tempfile.TemporaryDirectory(prefix="prepicm-demo-") as tmp:
        # every NPP frame is also encoded plain, so the saving is measured on every frame, not sampled
        services = LocalServices(Path(tmp), tasks=tasks, npp_artifact=npp, quality=args.quality,
                                 edge_env={"PREPICM_EDGE_PLAIN_SAMPLE_EVERY": "1"})
        t0 = time.perf_counter()
        try:
            services.launch()
            print(f"demo: cloud {services.cloud.url} (pid {services.cloud.pid}), edge {services.edge.url} "
                  f"(pid {services.edge.pid})", flush=True)
            services.wait_ready()
            print(f"demo: both ready in {time.perf_counter() - t0:.1f} s", flush=True)
            ready = httpx.get(f"{services.edge.url}/readyz", timeout=5).json()
            npp_id = ready.get("npp")
            if npp is not None:
                backend = ready.get("npp_backend") or {}
                on = " ".join(str(x) for x in (backend.get("backend"), *backend.get("providers", [])) if x)
                print(f"demo: edge runs NPP {npp_id} ({on or 'backend unknown'}); every frame is also encoded "
                      "without it to measure the bits saved", flush=True)
            print(table_header(tasks), flush=True)
            run = asyncio.run(stream(services.edge.url, paths, args.cameras, args.frames, tasks, args.timeout))
            # a dead service is a failure even if the frames came back
            services.cloud.check_alive()
            services.edge.check_alive()
        finally:
            codes = services.stop()
            print(f"demo: services stopped (edge {_status(codes['edge'])}, cloud {_status(codes['cloud'])})",
                  flush=True)
    print()
    for line in summary_lines(run, npp_id, tasks):
        print(line)
    return 0 if run.rows and all(r.analysed for r in run.rows) else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run_demo(args)
    except DemoError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        first, _, rest = str(exc).partition("\n")
        print(f"demo: error: {first}", file=sys.stderr)
        if rest:
            print(rest, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; services stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
