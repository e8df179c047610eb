"""A camera fleet simulator: N cameras stream frames at a given fps to an edge's ``POST /encode``.

    python -m edge.simulator /work/shared/data/kodak --cameras 4 --fps 2 --duration 30
    python -m edge.simulator clip.mp4 --cameras 2 --fps 10 --frames 100 --target-bpp 0.2
    python -m edge.simulator rtsp://camera.local/stream --fps 5 --duration 60 --no-forward

SOURCE is a folder of images (each camera cycles through them from its own offset; files are sent
as they are), one image file, a video file, or a stream URL (``rtsp://…``; video and streams are
decoded with PyAV and sent as PNG, or JPEG with ``--upload-format jpeg``). A video file is read
frame by frame (looped with ``--loop``); a live stream is read by a background thread that keeps
only the newest frame, so a slow sender never falls behind real time.

Each camera sends on its own schedule (``fps``, staggered across cameras) with at most
``--max-in-flight`` requests outstanding; a frame whose slot comes while the camera is at that
limit is skipped and counted. A live line on stderr every ``--summary-every`` seconds shows the
send rate, mean bpp, latency p50/p99 and errors; the final summary is one JSON object on stdout.
Exit status: 0 when at least one frame was encoded, 1 when none was, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import httpx

from shared.imageio import IMAGE_SUFFIXES, list_images
from shared.wire import AUTH_HEADER, ENCODE_PATH

_MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
          ".tif": "image/tiff", ".tiff": "image/tiff", ".webp": "image/webp", ".ppm": "image/x-portable-pixmap",
          ".pgm": "image/x-portable-graymap"}


class SimulatorError(Exception):
    """A source or argument the simulator cannot use (printed as one line, exit 2)."""


class FrameSource(Protocol):
    def next(self) -> tuple[bytes, str] | None: ...  # (bytes, media type); None: the source ended

    def close(self) -> None: ...


# -- sources ---------------------------------------------------------------------------------------------


class FolderFrames:
    """Image files sent as they are, cycling; camera ``i`` starts at the ``i``-th file."""

    def __init__(self, paths: list[Path], offset: int) -> None:
        self.paths, self.i = paths, offset

    def next(self) -> tuple[bytes, str]:
        p = self.paths[self.i % len(self.paths)]
        self.i += 1
        return p.read_bytes(), _MEDIA.get(p.suffix.lower(), "application/octet-stream")

    def close(self) -> None:
        pass


def import_av() -> Any:
    try:
        import av
    except ImportError:
        raise SimulatorError("reading video or streams needs PyAV: pip install 'prepicm[edge]' (or pip install av)") \
            from None
    return av


def _encode_upload(rgb: Any, fmt: str) -> tuple[bytes, str]:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(rgb).save(buf, "JPEG", quality=95)
        return buf.getvalue(), "image/jpeg"
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue(), "image/png"


def _open(source: str) -> Any:
    av = import_av()
    options = {"rtsp_transport": "tcp"} if source.startswith(("rtsp://", "rtsps://")) else {}
    try:
        container = av.open(source, options=options, timeout=10.0)
    except (av.FFmpegError, OSError) as exc:
        raise SimulatorError(f"cannot open video source {source}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise SimulatorError(f"{source} has no video stream")
    return container


class VideoFrames:
    """A video file, frame by frame (reopened at the end with ``loop``)."""

    def __init__(self, source: str, fmt: str, loop: bool) -> None:
        self.source, self.fmt, self.loop = source, fmt, loop
        self.container = _open(source)
        self._frames = self.container.decode(video=0)

    def next(self) -> tuple[bytes, str] | None:
        for _ in range(2):
            try:
                frame = next(self._frames)
                return _encode_upload(frame.to_ndarray(format="rgb24"), self.fmt)
            except StopIteration:
                if not self.loop:
                    return None
                self.container.close()
                self.container = _open(self.source)
                self._frames = self.container.decode(video=0)
        return None

    def close(self) -> None:
        self.container.close()


class LiveFrames:
    """A live stream: a thread decodes continuously and keeps only the newest frame."""

    def __init__(self, source: str, fmt: str) -> None:
        self.fmt = fmt
        self.container = _open(source)
        self._latest: Any = None
        self._cond = threading.Condition()
        self._ended = False
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True, name="simulator-stream")
        self._thread.start()

    def _read(self) -> None:
        try:
            for frame in self.container.decode(video=0):
                if self._stop:
                    break
                with self._cond:
                    self._latest = frame
                    self._cond.notify_all()
        except Exception as exc:  # a dropped stream ends the source; the summary says so
            print(f"edge.simulator: stream ended: {exc}", file=sys.stderr)
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def next(self) -> tuple[bytes, str] | None:
        with self._cond:
            while self._latest is None and not self._ended:
                self._cond.wait(timeout=1.0)
            frame, self._latest = self._latest, None
        return None if frame is None else _encode_upload(frame.to_ndarray(format="rgb24"), self.fmt)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self.container.close()


def open_sources(source: str, cameras: int, fmt: str, loop: bool) -> list[FrameSource]:
    """One frame source per camera; :class:`SimulatorError` when the source is unusable."""
    if "://" in source:
        return [LiveFrames(source, fmt) for _ in range(cameras)]
    path = Path(source)
    if path.is_dir():
        paths = list_images(path)
        if not paths:
            raise SimulatorError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        return [FolderFrames(paths, i) for i in range(cameras)]
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [FolderFrames([path], 0) for _ in range(cameras)]
    if path.is_file():
        return [VideoFrames(str(path), fmt, loop) for _ in range(cameras)]
    raise SimulatorError(f"source not found: {source} (a folder of images, an image, a video file or a stream URL)")


# -- statistics ------------------------------------------------------------------------------------------


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    ok: int = 0
    delivered: int = 0
    spooled: int = 0
    skipped: int = 0  # slots missed because the camera had max-in-flight requests outstanding
    errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    bpps: list[float] = field(default_factory=list)
    bits: int = 0

    def record(self, latency: float, bpp: float | None, bits: int | None, delivered: bool | None) -> None:
        self.ok += 1
        self.latencies_s.append(latency)
        if bpp is not None:
            self.bpps.append(bpp)
        self.bits += bits or 0
        if delivered is True:
            self.delivered += 1
        elif delivered is False:
            self.spooled += 1

    def summary(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        lat = sorted(self.latencies_s)

        def pct(p: float) -> float | None:
            return None if not lat else round(1e3 * lat[min(len(lat) - 1, int(p * len(lat)))], 2)

        return {
            "elapsed_s": round(elapsed, 3), "sent": self.sent, "ok": self.ok, "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors), "skipped": self.skipped, "delivered": self.delivered,
            "spooled": self.spooled, "fps": round(self.ok / elapsed, 3),
            "mean_bpp": None if not self.bpps else round(statistics.fmean(self.bpps), 5),
            "uplink_bits_per_s": round(self.bits / elapsed, 1),
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99),
                           "mean": None if not lat else round(1e3 * statistics.fmean(lat), 2)},
        }

    def line(self) -> str:
        s = self.summary()
        bpp = "-" if s["mean_bpp"] is None else f"{s['mean_bpp']:.4f}"
        p50 = "-" if s["latency_ms"]["p50"] is None else f"{s['latency_ms']['p50']:.0f}"
        p99 = "-" if s["latency_ms"]["p99"] is None else f"{s['latency_ms']['p99']:.0f}"
        return (f"t={s['elapsed_s']:.1f}s sent={s['sent']} ok={s['ok']} errors={s['errors']} skipped={s['skipped']} "
                f"fps={s['fps']:.2f} mean_bpp={bpp} latency_ms p50={p50} p99={p99}")


# -- sending ---------------------------------------------------------------------------------------------


async def _send(client: httpx.AsyncClient, params: dict[str, Any], data: bytes, media: str, stats: Stats) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.post(ENCODE_PATH, params=params, content=data, headers={"content-type": media})
    except httpx.TransportError as exc:
        stats.errors[type(exc).__name__] += 1
        return
    latency = time.perf_counter() - t0
    if r.status_code >= 400:
        try:
            code = str(r.json().get("error", r.status_code))
        except ValueError:
            code = str(r.status_code)
        stats.errors[f"{r.status_code}:{code}"] += 1
        return
    if r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        stats.record(latency, body.get("bpp"), body.get("bits"), body.get("delivered"))
    else:
        bpp = r.headers.get("x-prepicm-bpp")
        stats.record(latency, float(bpp) if bpp else None, int(r.headers.get("x-prepicm-bits", "0")), None)


def _finished(pending: set[asyncio.Task[None]], in_flight: asyncio.Semaphore) -> Any:
    def done(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        in_flight.release()
    return done


async def _camera(index: int, args: argparse.Namespace, source: FrameSource, client: httpx.AsyncClient,
                  stats: Stats, stop_at: float | None) -> None:
    camera_id = f"{args.camera_prefix}-{index}"
    period = 1.0 / args.fps
    start = time.monotonic() + index * period / args.cameras  # stagger the fleet inside one period
    in_flight = asyncio.Semaphore(args.max_in_flight)
    pending: set[asyncio.Task[None]] = set()
    k = 0
    while args.frames is None or k < args.frames:
        slot = start + k * period
        if stop_at is not None and slot >= stop_at:
            break
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        k += 1
        if in_flight.locked():
            stats.skipped += 1
            continue
        frame = await asyncio.to_thread(source.next)
        if frame is None:
            break
        params: dict[str, Any] = {"camera_id": camera_id, "frame_id": args.first_frame_id + k - 1,
                                  "captured_at": time.time(), "forward": str(not args.no_forward).lower()}
        for key in ("codec", "quality", "target_bpp", "npp"):
            if getattr(args, key) is not None:
                params[key] = getattr(args, key)
        await in_flight.acquire()
        stats.sent += 1
        task = asyncio.create_task(_send(client, params, frame[0], frame[1], stats))
        pending.add(task)
        task.add_done_callback(_finished(pending, in_flight))
    if pending:
        await asyncio.gather(*pending)


async def run(args: argparse.Namespace, sources: list[FrameSource]) -> Stats:
    stats = Stats()
    headers = {AUTH_HEADER: f"Bearer {args.token}"} if args.token else {}
    timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, 5.0))
    limits = httpx.Limits(max_connections=args.cameras * args.max_in_flight)
    stop_at = None if args.duration is None else time.monotonic() + args.duration
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=timeout, limits=limits) as client:
        cams = [asyncio.create_task(_camera(i, args, s, client, stats, stop_at)) for i, s in enumerate(sources)]

        async def report() -> None:
            while True:
                await asyncio.sleep(args.summary_every)
                print(stats.line(), file=sys.stderr, flush=True)

        reporter = asyncio.create_task(report()) if args.summary_every > 0 else None
        try:
            await asyncio.gather(*cams)
        finally:
            if reporter is not None:
                reporter.cancel()
    return stats


# -- command line ----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        self.exit(2, f"edge.simulator: error: {message} (see --help)\n")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m edge.simulator", description=__doc__.split("\n\n")[0],
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="folder of images, an image, a video file, or a stream URL (rtsp://…)")
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="the edge's base URL")
    ap.add_argument("--cameras", type=_positive(int), default=1)
    ap.add_argument("--fps", type=_positive(float), default=1.0, help="frames per second per camera")
    stop = ap.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=_positive(int), help="frames per camera (default: 10 without --duration)")
    stop.add_argument("--duration", type=_positive(float), help="seconds to run")
    ap.add_argument("--codec")
    rate = ap.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=int)
    rate.add_argument("--target-bpp", type=_positive(float))
    ap.add_argument("--npp", choices=["true", "false"], help="default: the edge's (on when it has an artifact)")
    ap.add_argument("--no-forward", action="store_true", help="forward=false: the edge answers with the bitstream")
    ap.add_argument("--token", help="camera bearer token (the edge's CAMERA_TOKEN)")
    ap.add_argument("--camera-prefix", default="sim")
    ap.add_argument("--first-frame-id", type=int, default=0)
    ap.add_argument("--upload-format", choices=["png", "jpeg"], default="png", help="for video and stream frames")
    ap.add_argument("--loop", action="store_true", help="restart a video file at its end")
    ap.add_argument("--max-in-flight", type=_positive(int), default=4, help="outstanding requests per camera")
    ap.add_argument("--timeout", type=_positive(float), default=60.0, help="seconds per request")
    ap.add_argument("--summary-every", type=float, default=1.0, help="seconds between live lines (0: none)")
    ap.add_argument("--json", type=Path, help="also write the final summary to this file")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.frames is None and args.duration is None:
        args.frames = 10
    if not args.url.startswith(("http://", "https://")):
        print(f"edge.simulator: error: --url must be http(s)://…, got {args.url!r}", file=sys.stderr)
        return 2
    if args.cameras > 1000 or args.first_frame_id < 0:
        print("edge.simulator: error: --cameras must be ≤ 1000 and --first-frame-id ≥ 0", file=sys.stderr)
        return 2
    args.url = args.url.rstrip("/")
    try:
        sources = open_sources(args.source, args.cameras, args.upload_format, args.loop)
    except SimulatorError as exc:
        print(f"edge.simulator: error: {exc}", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(run(args, sources))
    except KeyboardInterrupt:
        return 130
    finally:
        for s in sources:
            s.close()
    summary = {"url": args.url, "source": args.source, "cameras": args.cameras, "fps_per_camera": args.fps,
               **stats.summary()}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0 if stats.ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
