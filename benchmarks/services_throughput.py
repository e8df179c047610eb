"""Throughput and latency of the services (real edge and cloud processes on loopback) against the
same work done in-process, for 1, 4 and 16 simulated cameras.

Usage: python benchmarks/services_throughput.py [--cameras 1 4 16] [--seconds 25] [--warmup 5]
       [--repeats 1] [--tasks yolov5n] [--quality 32] [--bpg-level 8] [--images DIR] [--json FILE]

**Services**: ``python -m cloud`` and ``python -m edge`` started by :mod:`demo.services` (free
loopback ports, temporary SQLite and spool, no NPP, BPG at ``--bpg-level``, default 8 = the edge's
default). Each camera is an httpx client in this process that sends Kodak PNG files to ``POST
/encode`` back to back, one request in flight (a closed loop: the fleet offers as much load as the
services take). Per-stage times come from the answers (edge: ``decode_input``, ``encode`` = pool
wall time, ``upload`` = the round trip to the cloud; cloud: ``decode``, ``queue`` = the batch wait,
``analyze:<task>`` = the batch's predict time); the batch-size histogram is the difference of the
cloud's ``/metrics`` before and after the run.

**In-process**: the same work through the one pipeline called directly, with the same structure
and thread counts: one thread per camera, the frame (already RGB) encoded in an
:class:`shared.pipeline.EncoderPool` of the edge's worker count running the edge's own job
(``EncodePipeline.encode``), :func:`shared.pipeline.decode` with at most the cloud's
``DECODE_WORKERS`` at once, :func:`shared.pipeline.analyze` in one thread per task model, one
predict at a time (as the cloud's batchers, but without batching). What the services add: PNG
decoding of the upload, HTTP twice, pickling frames to the encoder processes, the database write
and the event loops.

A third table says where the time goes: user + system CPU seconds per frame of each process group
(psutil), over the whole run.

A run counts frames that complete within a window of ``--seconds`` after ``--warmup`` seconds
(steady state: each camera keeps one frame in flight throughout);
both modes run in the same invocation, alternating (services first on even repeats). Overhead at
4 cameras = 1 − services frames/s / in-process frames/s (summed over repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
from prometheus_client.parser import text_string_to_metric_families

# the demo package (which starts the services) is not installed: it runs from the repository root
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.services import LocalServices
from edge.encoding import encode_job
from shared.imageio import list_images, read_rgb
from shared.paths import shared_data_dir
from shared.pipeline import EncoderPool, analyze, decode
from shared.runtime import current_runtime
from shared.tasks import TaskModel, get_task
from shared.wire import ENCODE_PATH, EncodeResult

#: the cloud's DECODE_WORKERS default (docs/cloud.md); the in-process decode is bounded the same
DECODE_WORKERS = 2
SERVICE_STAGES = ("decode_input", "encode", "upload")
CLOUD_STAGES = ("decode", "queue")


@dataclass
class Window:
    start: float
    end: float

    def holds(self, t: float) -> bool:
        return self.start <= t <= self.end


@dataclass
class RunResult:
    mode: str
    cameras: int
    repeat: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    stages_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    batch_sizes: dict[str, float] = field(default_factory=dict)  # bucket le → batches (not cumulative)
    batches: float = 0.0
    batch_frames: float = 0.0
    completed: int = 0  # frames finished over the whole run (warm-up and drain too): CPU is per these
    wall_s: float = 0.0  # the whole run
    cpu_s: dict[str, float] = field(default_factory=dict)  # process group → CPU seconds over the whole run

    @property
    def frames(self) -> int:
        return len(self.latencies_s)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


class CpuMeter:
    """User + system CPU seconds of named process groups (where the time goes, per frame)."""

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.groups = groups

    @staticmethod
    def _seconds(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def snapshot(self) -> dict[str, float]:
        return {name: self._seconds(get()) for name, get in self.groups.items()}

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before[k] for k in before}


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile in ms."""
    s = sorted(values)
    if not s:
        return float("nan")
    return 1e3 * s[max(0, min(len(s) - 1, int(np.ceil(p / 100 * len(s))) - 1))]


# -- services --------------------------------------------------------------------------------------------


def _batch_histogram(metrics_text: str) -> tuple[dict[str, float], float, float]:
    """Cumulative buckets of prepicm_cloud_batch_size (le → count), its count and its sum."""
    buckets: dict[str, float] = {}
    count = total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "prepicm_cloud_batch_size":
            continue
        for s in family.samples:
            if s.name.endswith("_bucket"):
                buckets[s.labels["le"]] = s.value
            elif s.name.endswith("_count"):
                count = s.value
            elif s.name.endswith("_sum"):
                total = s.value
    return buckets, count, total


async def _service_camera(client: httpx.AsyncClient, name: str, pngs: list[bytes], offset: int, window: Window,
                          res: RunResult, tasks: str) -> None:
    k = 0
    while time.perf_counter() < window.end:
        data = pngs[(offset + k) % len(pngs)]
        params: dict[str, str | int | float] = {"camera_id": name, "frame_id": k, "captured_at": time.time(),
                                                 "tasks": tasks}
        k += 1
        t0 = time.perf_counter()
        try:
            r = await client.post(ENCODE_PATH, params=params, content=data, headers={"content-type": "image/png"})
        except httpx.HTTPError:
            res.errors += 1
            continue
        t1 = time.perf_counter()
        if r.status_code != 200:
            res.errors += 1
            continue
        res.completed += 1
        if not window.holds(t1):
            continue  # completed in the warm-up or after the window: not counted
        out = EncodeResult.model_validate(r.json())
        res.latencies_s.append(t1 - t0)
        for s in SERVICE_STAGES:
            if s in out.timings_s:
                res.stages_s[f"edge {s}"].append(out.timings_s[s])
        if out.cloud is not None:
            for s in CLOUD_STAGES:
                res.stages_s[f"cloud {s}"].append(out.cloud.timings_s[s])
            for t in out.cloud.results:
                res.stages_s[f"cloud inference:{t.task}"].append(t.seconds)


async def _services_run(edge_url: str, cloud_url: str, pngs: list[bytes], cameras: int, repeat: int,
                        warmup: float, seconds: float, tasks: Sequence[str]) -> RunResult:
    res = RunResult("services", cameras, repeat, seconds)
    async with httpx.AsyncClient(timeout=120) as plain:
        before = _batch_histogram((await plain.get(f"{cloud_url}/metrics")).text)
    now = time.perf_counter()
    window = Window(now + warmup, now + warmup + seconds)
    limits = httpx.Limits(max_connections=cameras, max_keepalive_connections=cameras)
    async with httpx.AsyncClient(base_url=edge_url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(_service_camera(client, f"r{repeat}-c{cameras}-cam{i}", pngs, i, window, res,
                                               ",".join(tasks)) for i in range(cameras)))
    async with httpx.AsyncClient(timeout=120) as plain:
        after = _batch_histogram((await plain.get(f"{cloud_url}/metrics")).text)
    # the whole run's batches (warm-up and drain included): the histogram cannot be windowed
    prev = 0.0
    for le in after[0]:
        n = after[0][le] - before[0].get(le, 0.0)
        res.batch_sizes[le] = n - prev
        prev = n
    res.batches, res.batch_frames = after[1] - before[1], after[2] - before[2]
    return res


# -- in-process ------------------------------------------------------------------------------------------


class InProcess:
    """The same work through shared.pipeline, in this process (see the module docstring)."""

    def __init__(self, tasks: Sequence[str], workers: int, quality: int, options_json: str) -> None:
        self.quality, self.options = quality, options_json
        self.pool = EncoderPool(workers, max_queued=2 * workers, settings=current_runtime())
        self.models: list[TaskModel] = [get_task(t) for t in tasks]
        # one thread per model runs its predicts, one at a time, as the cloud's batchers do (torch's
        # OpenMP team then belongs to that thread: predicts from every camera thread would each
        # bring a team of their own, spinning on the same cores)
        self.predictors = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{m.name}")
                           for m in self.models]
        warm = np.full((64, 64, 3), 114, np.uint8)
        for m, predictor in zip(self.models, self.predictors, strict=True):
            predictor.submit(m.predict, [warm]).result()
        for f in [self.pool.submit(encode_job, "bpg", options_json, warm, quality) for _ in range(workers)]:
            f.result()
        self.decoding = threading.BoundedSemaphore(DECODE_WORKERS)

    def _camera(self, frames: list[np.ndarray], offset: int, window: Window, res: RunResult,
                lock: threading.Lock) -> None:
        k = 0
        while time.perf_counter() < window.end:
            rgb = frames[(offset + k) % len(frames)]
            k += 1
            t0 = time.perf_counter()
            enc = self.pool.submit(encode_job, "bpg", self.options, rgb, self.quality).result()
            t1 = time.perf_counter()
            with self.decoding:
                dec = decode(enc.bitstream)
            t2 = time.perf_counter()
            inference: list[tuple[str, float]] = []
            for model, predictor in zip(self.models, self.predictors, strict=True):
                a = predictor.submit(analyze, dec.image, [model]).result()
                inference.append((model.name, a.timings_s[f"analyze:{model.name}"]))
            t3 = time.perf_counter()
            with lock:
                res.completed += 1
            if window.holds(t3):
                with lock:
                    res.latencies_s.append(t3 - t0)
                    res.stages_s["encode"].append(t1 - t0)
                    res.stages_s["decode"].append(t2 - t1)
                    for name, s in inference:
                        res.stages_s[f"inference:{name}"].append(s)

    def run(self, frames: list[np.ndarray], cameras: int, repeat: int, warmup: float, seconds: float) -> RunResult:
        res = RunResult("in-process", cameras, repeat, seconds)
        now = time.perf_counter()
        window = Window(now + warmup, now + warmup + seconds)
        lock = threading.Lock()
        threads = [threading.Thread(target=self._camera, args=(frames, i, window, res, lock), daemon=True)
                   for i in range(cameras)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return res

    def close(self) -> None:
        self.pool.close()
        for p in self.predictors:
            p.shutdown()


# -- tables ----------------------------------------------------------------------------------------------


def _bucket_label(le: str, prev: str | None) -> str:
    hi = int(float(le))
    lo = 1 if prev is None else int(float(prev)) + 1
    return str(hi) if lo == hi else f"{lo}–{hi}"


def tables(runs: list[RunResult], tasks: Sequence[str]) -> str:
    out = ["| cameras | mode | repeat | frames | window s | frames/s | end-to-end p50 ms | p99 ms | errors |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        out.append(f"| {r.cameras} | {r.mode} | {r.repeat} | {r.frames} | {r.seconds:.0f} | {r.fps:.2f} | "
                   f"{pct(r.latencies_s, 50):.0f} | {pct(r.latencies_s, 99):.0f} | {r.errors} |")
    out.append("")
    by: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
    for r in runs:
        by[(r.mode, r.cameras)].append(r)
    cams = sorted({r.cameras for r in runs})
    out += ["| cameras | services frames/s | in-process frames/s | services overhead |", "|---:|---:|---:|---:|"]
    for c in cams:
        s, i = by.get(("services", c), []), by.get(("in-process", c), [])
        if s and i:
            sf = sum(r.frames for r in s) / sum(r.seconds for r in s)
            inf = sum(r.frames for r in i) / sum(r.seconds for r in i)
            out.append(f"| {c} | {sf:.2f} | {inf:.2f} | {100 * (1 - sf / inf):+.1f}% |")
    out.append("")
    service_cols = [f"edge {s}" for s in SERVICE_STAGES] + [f"cloud {s}" for s in CLOUD_STAGES] + \
        [f"cloud inference:{t}" for t in tasks]
    names = {"cloud queue": "cloud batch wait"}
    out += ["Services, per stage p50 / p99 ms (all repeats):", "",
            "| cameras | " + " | ".join(names.get(c, c) for c in service_cols) + " | end-to-end |",
            "|---:|" + "---:|" * (len(service_cols) + 1)]
    for c in cams:
        rs = by.get(("services", c), [])
        if rs:
            cells = []
            for col in [*service_cols, "e2e"]:
                v = [x for r in rs for x in (r.latencies_s if col == "e2e" else r.stages_s.get(col, []))]
                cells.append(f"{pct(v, 50):.0f} / {pct(v, 99):.0f}")
            out.append(f"| {c} | " + " | ".join(cells) + " |")
    out.append("")
    inproc_cols = ["encode", "decode", *(f"inference:{t}" for t in tasks)]
    out += ["In-process, per stage p50 / p99 ms (all repeats):", "",
            "| cameras | " + " | ".join(inproc_cols) + " | end-to-end |", "|---:|" + "---:|" * (len(inproc_cols) + 1)]
    for c in cams:
        rs = by.get(("in-process", c), [])
        if rs:
            cells = []
            for col in [*inproc_cols, "e2e"]:
                v = [x for r in rs for x in (r.latencies_s if col == "e2e" else r.stages_s.get(col, []))]
                cells.append(f"{pct(v, 50):.0f} / {pct(v, 99):.0f}")
            out.append(f"| {c} | " + " | ".join(cells) + " |")
    out.append("")
    svc = [r for r in runs if r.mode == "services"]
    if svc:
        les = [le for le in svc[0].batch_sizes if le != "+Inf"]
        used = [le for le in les if any(r.batch_sizes.get(le, 0) for r in svc)]
        labels = {le: _bucket_label(le, les[les.index(le) - 1] if les.index(le) else None) for le in les}
        out += ["Cloud batch sizes (predict calls per batch-size bucket, from /metrics; whole runs, all tasks):", "",
                "| cameras | repeat | batches | mean batch | " + " | ".join(labels[le] for le in used) + " |",
                "|---:|---:|---:|---:|" + "---:|" * len(used)]
        for r in svc:
            mean = r.batch_frames / r.batches if r.batches else float("nan")
            out.append(f"| {r.cameras} | {r.repeat} | {r.batches:.0f} | {mean:.2f} | "
                       + " | ".join(f"{r.batch_sizes.get(le, 0):.0f}" for le in used) + " |")
    return "\n".join(out)


def _meter(services: LocalServices) -> CpuMeter:
    me = psutil.Process()
    edge, cloud = psutil.Process(services.edge.pid), psutil.Process(services.cloud.pid)
    service_pids = {edge.pid, cloud.pid}

    def mine() -> list[psutil.Process]:  # the encoder pool's workers (and its resource tracker)
        return [c for c in me.children(recursive=False) if c.pid not in service_pids]

    return CpuMeter({
        "bench process": lambda: [me],
        "bench's encoder workers": mine,
        "edge": lambda: [edge],
        "edge's encoder workers": lambda: edge.children(recursive=True),
        "cloud": lambda: [cloud, *cloud.children(recursive=True)],
    })


def cpu_table(runs: list[RunResult]) -> str:
    groups = list(runs[0].cpu_s) if runs else []
    out = ["CPU seconds per frame by process (user + system over the whole run, warm-up and drain included; "
           "the bench process is the HTTP client in services runs and does everything but encoding in-process):",
           "", "| cameras | mode | repeat | frames | " + " | ".join(groups) + " | total | cores busy |",
           "|---:|---|---:|---:|" + "---:|" * (len(groups) + 2)]
    for r in runs:
        n = max(r.completed, 1)
        total = sum(r.cpu_s.values())
        out.append(f"| {r.cameras} | {r.mode} | {r.repeat} | {r.completed} | "
                   + " | ".join(f"{r.cpu_s[g] / n:.3f}" for g in groups)
                   + f" | {total / n:.3f} | {total / max(r.wall_s, 1e-9):.2f} |")
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--seconds", type=float, default=25.0, help="measured window per run")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before the window opens")
    ap.add_argument("--repeats", type=int, default=1, help="runs per mode and camera count, alternating")
    ap.add_argument("--tasks", default="yolov5n", help="cloud task models (default: the cloud's default)")
    ap.add_argument("--quality", type=int, default=32)
    ap.add_argument("--bpg-level", type=int, default=8, choices=range(10), metavar="0-9",
                    help="BPG encoder level at the edge and in-process (default 8: the edge's default)")
    ap.add_argument("--images", type=Path, default=None, help="PNG folder (default ../shared/data/kodak)")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = ap.parse_args(argv)
    tasks = tuple(t for t in args.tasks.split(",") if t)
    folder = args.images or shared_data_dir() / "data" / "kodak"
    paths = [p for p in list_images(folder) if p.suffix.lower() == ".png"]
    if not paths:
        print(f"services_throughput: no PNG images in {folder}", file=sys.stderr)
        return 2
    pngs = [p.read_bytes() for p in paths]
    frames = [np.ascontiguousarray(read_rgb(p)) for p in paths]
    workers = current_runtime().encode_workers
    options = json.dumps({"level": args.bpg_level}, sort_keys=True)  # the edge's CODEC_OPTIONS["bpg"]
    print(f"{len(paths)} images from {folder} ({frames[0].shape[1]}×{frames[0].shape[0]}), BPG QP {args.quality} "
          f"level {args.bpg_level}, tasks {','.join(tasks)}, {workers} encoder processes, "
          f"windows of {args.seconds:g} s after {args.warmup:g} s warm-up", file=sys.stderr, flush=True)
    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="prepicm-bench-") as tmp:
        inproc = InProcess(tasks, workers, args.quality, options)
        edge_env = {"PREPICM_EDGE_CODEC_OPTIONS": json.dumps({"bpg": {"level": args.bpg_level}})}
        services = LocalServices(Path(tmp), tasks=tasks, quality=args.quality, edge_env=edge_env)
        try:
            services.start()
            npp = httpx.get(f"{services.edge.url}/readyz", timeout=5).json().get("npp")
            if npp is not None:  # the in-process side runs no NPP: the comparison would be unfair
                raise RuntimeError(f"the edge runs NPP {npp}; this benchmark compares the plain codec")
            meter = _meter(services)
            for cameras in args.cameras:
                for repeat in range(args.repeats):
                    order = ("services", "in-process") if repeat % 2 == 0 else ("in-process", "services")
                    for mode in order:
                        before, t0 = meter.snapshot(), time.perf_counter()
                        if mode == "services":
                            r = asyncio.run(_services_run(services.edge.url, services.cloud.url, pngs, cameras,
                                                          repeat, args.warmup, args.seconds, tasks))
                        else:
                            r = inproc.run(frames, cameras, repeat, args.warmup, args.seconds)
                        r.wall_s, r.cpu_s = time.perf_counter() - t0, meter.delta(before, meter.snapshot())
                        runs.append(r)
                        print(f"  {mode:10s} cameras={cameras:2d} repeat={repeat}: {r.frames} frames, "
                              f"{r.fps:.2f} frames/s, p50 {pct(r.latencies_s, 50):.0f} ms, errors {r.errors}",
                              file=sys.stderr, flush=True)
                services.cloud.check_alive()
                services.edge.check_alive()
        finally:
            services.stop()
            inproc.close()
    print(tables(runs, tasks))
    print()
    print(cpu_table(runs))
    if args.json:
        args.json.write_text(json.dumps([{
            "mode": r.mode, "cameras": r.cameras, "repeat": r.repeat, "seconds": r.seconds, "frames": r.frames,
            "fps": r.fps, "errors": r.errors, "latencies_s": r.latencies_s, "stages_s": dict(r.stages_s),
            "batch_sizes": r.batch_sizes, "batches": r.batches, "completed": r.completed, "wall_s": r.wall_s,
            "cpu_s": r.cpu_s} for r in runs], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
