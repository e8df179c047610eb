"""The cloud and the edge as local processes on free loopback ports, with a temporary SQLite
database, a temporary spool and a generated bearer token; stopped cleanly whatever happens.

    with LocalServices(workdir, tasks=("efficientnet_lite0",)) as services:
        httpx.post(f"{services.edge.url}/encode", ...)

Each service is ``python -m cloud`` / ``python -m edge`` configured only through its environment
(``PREPICM_CLOUD_*``, ``PREPICM_EDGE_*``; the caller's own variables of those prefixes are dropped
so a developer's shell cannot change what runs). Each leads a process session of its own: its
children (the edge's encoder workers) are in that session too, so stopping the service can make
sure none of them survives without touching anything else. On Linux a service also receives
SIGTERM if this process dies first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

import httpx

from shared.runtime import child_environment

#: seconds a service may take to answer /readyz 200 (imports torch, loads models, spawns encoders)
READY_TIMEOUT_S = 180.0
#: seconds a service may take to shut down after SIGTERM before it is killed
STOP_TIMEOUT_S = 20.0


class ServiceError(RuntimeError):
    """A service did not start, or died; the message ends with the tail of its log."""


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the session cleanup in stop() still applies


class ServiceProcess:
    """``python -m <module>`` on ``127.0.0.1:<port>``, its output appended to ``log_path``."""

    def __init__(self, name: str, module: str, port: int, env: Mapping[str, str], log_path: Path,
                 cwd: Path) -> None:
        self.name, self.module, self.port, self.env = name, module, port, dict(env)
        self.log_path, self.cwd = log_path, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(f"the {self.name} exited with status {self.proc.returncode}; its log ends:\n"
                               f"{self.log_tail()}")

    def wait_ready(self, deadline: float) -> None:
        """Poll ``/readyz`` until it answers 200; ServiceError if the process dies or time runs out."""
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while True:
                self.check_alive()
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise ServiceError(f"the {self.name} did not become ready within {READY_TIMEOUT_S:.0f} s; "
                                       f"its log ends:\n{self.log_tail()}")
                time.sleep(0.2)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (graceful: uvicorn runs the lifespan's shutdown), wait, then SIGKILL the
        session if anything of it is left. Returns the exit status (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # the leader is gone; its session's members (encoder workers) must be too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM are recorded, not acted on, inside the block; re-raised after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


class LocalServices:
    """The cloud and an edge that forwards to it, on free loopback ports under ``workdir``."""

    def __init__(self, workdir: Path, *, tasks: tuple[str, ...] = ("efficientnet_lite0", "yolov5n"),
                 npp_artifact: Path | None = None, quality: int = 32,
                 edge_env: Mapping[str, str] | None = None, cloud_env: Mapping[str, str] | None = None,
                 extra_env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        root = cwd or Path(__file__).resolve().parents[1]
        cloud_port, edge_port = free_port(), free_port()
        common = dict(extra_env or {})
        cloud_vars = {
            "PREPICM_CLOUD_HOST": "127.0.0.1", "PREPICM_CLOUD_PORT": str(cloud_port),
            "PREPICM_CLOUD_TOKEN": self.token, "PREPICM_CLOUD_TASKS": ",".join(tasks),
            "PREPICM_CLOUD_DATABASE_URL": f"sqlite:///{workdir / 'cloud' / 'results.db'}",
            "PREPICM_CLOUD_LOG_LEVEL": "warning", **common, **(cloud_env or {})}
        edge_vars = {
            "PREPICM_EDGE_HOST": "127.0.0.1", "PREPICM_EDGE_PORT": str(edge_port),
            "PREPICM_EDGE_CLOUD_URL": f"http://127.0.0.1:{cloud_port}", "PREPICM_EDGE_CLOUD_TOKEN": self.token,
            "PREPICM_EDGE_SPOOL_DIR": str(workdir / "edge" / "spool"), "PREPICM_EDGE_QUALITY": str(quality),
            "PREPICM_EDGE_LOG_LEVEL": "warning", **common, **(edge_env or {})}
        # said explicitly either way: the edge's own default is the shipped NPP when present
        edge_vars.setdefault("PREPICM_EDGE_NPP_ARTIFACT", "none" if npp_artifact is None else str(npp_artifact))
        drop = ("PREPICM_CLOUD_", "PREPICM_EDGE_")
        self.cloud = ServiceProcess("cloud", "cloud", cloud_port, child_environment(cloud_vars, drop_prefixes=drop),
                                    workdir / "cloud.log", root)
        self.edge = ServiceProcess("edge", "edge", edge_port, child_environment(edge_vars, drop_prefixes=drop),
                                   workdir / "edge.log", root)

    def launch(self) -> None:
        """Start both processes at once: neither needs the other to become ready."""
        (self.workdir / "cloud").mkdir(parents=True, exist_ok=True)
        self.cloud.start()
        self.edge.start()

    def wait_ready(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + ready_timeout_s
        self.cloud.wait_ready(deadline)
        self.edge.wait_ready(deadline)

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.launch()
        self.wait_ready(ready_timeout_s)

    def stop(self) -> dict[str, int | None]:
        """The edge first (it forwards to the cloud), then the cloud; each SIGTERM, wait, kill.
        A second Ctrl-C (or SIGTERM) while this runs is held back until both are stopped."""
        with _signals_deferred():
            return {s.name: s.stop() for s in (self.edge, self.cloud)}

    def __enter__(self) -> LocalServices:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
