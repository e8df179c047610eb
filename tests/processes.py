"""The services as real processes on loopback ports, for tests that speak to them over HTTP.

:class:`ServiceProcess` runs ``python -m <module>`` with an environment of its own, appends its
stdout and stderr to a log file (every start of the same service adds to the same file, so a test
that restarts one sees the whole story), waits for ``/readyz``, and stops it: SIGTERM (graceful,
what an orchestrator sends) with a SIGKILL fallback, or :meth:`ServiceProcess.kill` to simulate a
crash. Each process leads a session of its own, so whatever it started (the edge's encoder
workers) can be cleaned up after a crash without touching anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def service_env(prefix: str, values: Mapping[str, object] | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without any ``PREPICM_<prefix>_*`` (a developer's shell must not
    leak into a test), plus ``values`` as ``PREPICM_<prefix>_<name>`` (bools, dicts as env text)
    and ``extra`` verbatim."""
    head = f"PREPICM_{prefix.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(head)}
    env.update({f"{head}{k}": _env_value(v) for k, v in (values or {}).items()})
    env.update(extra)
    return env


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus exposition (0 when the series is absent). Labels not
    given are summed over, so ``metric(t, "prepicm_edge_frames_total", outcome="delivered")``
    counts every camera and codec."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


class ServiceProcess:
    """``python -m <module>`` on ``127.0.0.1:<port>``; the environment says everything else."""

    def __init__(self, module: str, env: Mapping[str, str], port: int, log_path: Path) -> None:
        self.module, self.env, self.port, self.log_path = module, dict(env), port, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None
        self._groups: list[int] = []  # sessions started, cleaned up at close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ServiceProcess:
        if self.running:
            raise RuntimeError(f"python -m {self.module} is already running")
        self.starts += 1
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"===== python -m {self.module} start #{self.starts} on port {self.port}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._groups.append(self.proc.pid)
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> dict[str, object]:
        """Poll ``/readyz`` until 200; its JSON. Fails at once (with the log) if the process exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc is None or self.proc.poll() is not None:
                rc = None if self.proc is None else self.proc.returncode
                raise AssertionError(f"python -m {self.module} exited ({rc}) before it was ready:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if r.status_code == 200:
                    return dict(r.json())
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"python -m {self.module} not ready within {timeout_s} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. The exit status (None: not running)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._close_log()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the service process alone, as a crash or the OOM killer would: no shutdown runs,
        and its child processes are left to fend for themselves."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait(10)
        self._close_log()

    def close(self) -> None:
        """Stop it if it runs, then SIGKILL whatever its sessions left behind."""
        self.stop()
        for pgid in self._groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self._groups.clear()

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 6000) -> str:
        text = self.log_text()
        return text if len(text) <= chars else "…" + text[-chars:]

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
