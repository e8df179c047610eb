"""Cloud throughput with and without dynamic batching: frames/s of ``POST /analyze`` at client
concurrency 1 and C, for MAX_BATCH 1 (every frame alone) and MAX_BATCH B.

Usage: python benchmarks/cloud_batching.py [--task efficientnet_lite0] [--requests 48] [--concurrency 8]
       [--max-batch 8] [--max-delay-ms 10] [--size 256x384] [--device cpu]

The real app runs under uvicorn in this process on a loopback port (a temporary SQLite store);
clients are httpx over real HTTP, each request a distinct frame (no duplicates), BPG bitstreams of
Kodak crops at QP 32. Each configuration is warmed up with C requests first; numbers are wall time
for ``--requests`` requests, so they include HTTP, decode, inference and the database write.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from cloud.core.config import CloudSettings
from cloud.main import create_app
from shared.codecs import get_codec
from shared.imageio import read_rgb
from shared.paths import shared_data_dir
from shared.pipeline import EncodePipeline

TOKEN = "benchmark-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bitstreams(h: int, w: int) -> list[bytes]:
    pipe = EncodePipeline(get_codec("bpg", level=1))
    kodak = shared_data_dir() / "data" / "kodak"
    return [pipe.encode(np.ascontiguousarray(read_rgb(kodak / f"kodim{i:02d}.png")[:h, :w]), 32).bitstream
            for i in range(1, 9)]


class Server:
    def __init__(self, settings: CloudSettings) -> None:
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host=settings.HOST, port=settings.PORT,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the cloud did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


async def _drive(url: str, bitstreams: list[bytes], frames: itertools.count, n: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    todo = iter(range(n))
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"},
                                 limits=httpx.Limits(max_connections=concurrency)) as http:
        async def worker() -> None:
            for _ in todo:
                fid = next(frames)
                t0 = time.perf_counter()
                r = await http.post("/analyze", params={"camera_id": "bench", "frame_id": fid, "captured_at": 1.0},
                                    content=bitstreams[fid % len(bitstreams)])
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def run(args: argparse.Namespace, max_batch: int, concurrency: int, bitstreams: list[bytes]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = CloudSettings(TOKEN=TOKEN, HOST="127.0.0.1", PORT=_port(), TASKS=args.task, DEVICE=args.device,
                                 DATABASE_URL=f"sqlite:///{Path(tmp) / 'results.db'}", MAX_BATCH=max_batch,
                                 MAX_DELAY_MS=args.max_delay_ms)
        with Server(settings) as srv:
            url = f"http://127.0.0.1:{settings.PORT}"
            frames = itertools.count()
            asyncio.run(_drive(url, bitstreams, frames, concurrency, concurrency))  # warm-up
            reg = srv.app.state.metrics.registry
            c0, s0 = (reg.get_sample_value(f"prepicm_cloud_batch_size_{k}") or 0.0 for k in ("count", "sum"))
            t0 = time.perf_counter()
            lat = asyncio.run(_drive(url, bitstreams, frames, args.requests, concurrency))
            wall = time.perf_counter() - t0
            c1, s1 = (reg.get_sample_value(f"prepicm_cloud_batch_size_{k}") or 0.0 for k in ("count", "sum"))
    return {"max_batch": max_batch, "concurrency": concurrency, "fps": args.requests / wall,
            "mean_batch": (s1 - s0) / max(c1 - c0, 1), "p50_ms": 1e3 * statistics.median(lat),
            "p95_ms": 1e3 * sorted(lat)[int(0.95 * (len(lat) - 1))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="efficientnet_lite0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-delay-ms", type=float, default=10.0)
    ap.add_argument("--size", default="256x384", help="crop HxW of the Kodak images")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    bitstreams = _bitstreams(h, w)
    print(f"task {args.task} on {args.device}, {h}x{w} BPG frames, {args.requests} requests per row, "
          f"MAX_DELAY_MS {args.max_delay_ms:g}")
    print("| MAX_BATCH | concurrency | frames/s | mean batch | p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for max_batch in (1, args.max_batch):
        for concurrency in (1, args.concurrency):
            r = run(args, max_batch, concurrency, bitstreams)
            print(f"| {r['max_batch']} | {r['concurrency']} | {r['fps']:.1f} | {r['mean_batch']:.2f} | "
                  f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
