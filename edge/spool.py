"""A bounded on-disk FIFO of bitstreams waiting for the cloud, that survives a restart.

One file per frame, ``<sequence number>.frame``, written atomically (:mod:`shared.atomic`: a
reader never sees half a file, a finished write survives a crash); the sequence number orders
them, and a reopened spool continues after the highest one found. A file holds a magic, the
frame's :class:`shared.wire.AnalyzeParams` as JSON and the bitstream::

    b"PREPSPL1" | u32 big-endian JSON length | JSON | bitstream

The spool never holds more than ``max_bytes``: to store a new frame it drops the OLDEST ones and
counts them (a camera's newest frames are worth more than its oldest). A file that cannot be read
back (truncated by a disk failure, foreign) is dropped and counted the same way. One process owns
a spool directory at a time (an exclusive ``flock`` on ``.lock``); a second one is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from shared.atomic import atomic_write_bytes
from shared.wire import AnalyzeParams

log = logging.getLogger("edge.spool")

MAGIC = b"PREPSPL1"
SUFFIX = ".frame"
_HEADER = struct.Struct(">I")


class SpoolError(RuntimeError):
    """The spool directory cannot be used (unwritable, or owned by another process)."""


@dataclass(frozen=True)
class SpooledFrame:
    seq: int
    params: AnalyzeParams
    bitstream: bytes


def encode_record(params: AnalyzeParams, bitstream: bytes) -> bytes:
    meta = params.model_dump_json(exclude_none=True).encode()
    return MAGIC + _HEADER.pack(len(meta)) + meta + bitstream


def decode_record(data: bytes) -> tuple[AnalyzeParams, bytes]:
    """Inverse of :func:`encode_record`; ``ValueError`` for anything that is not one."""
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or not data.startswith(MAGIC):
        raise ValueError("not a spool record (bad magic)")
    (n,) = _HEADER.unpack_from(data, len(MAGIC))
    if head + n > len(data):
        raise ValueError("truncated spool record")
    try:
        params = AnalyzeParams.model_validate(json.loads(data[head:head + n]))
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"spool record metadata is invalid: {exc}") from None
    return params, data[head + n:]


class Spool:
    """``put`` appends (dropping the oldest beyond ``max_bytes``), ``peek`` reads the oldest,
    ``remove`` deletes it once delivered. Thread-safe; file I/O is blocking (call it off the
    event loop). ``dropped`` counts frames lost to the size bound or to unreadable files."""

    def __init__(self, directory: Path | str, max_bytes: int) -> None:
        if max_bytes < 1:
            raise SpoolError(f"spool max_bytes must be ≥ 1, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.dropped = 0
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self.directory}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpoolError(f"spool directory {self.directory} is in use by another process") from None
        self._index: dict[int, int] = {}  # seq → file size; insertion order = sequence order
        self._scan()

    def _scan(self) -> None:
        found: list[tuple[int, int]] = []
        for p in self.directory.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                with contextlib.suppress(OSError):  # an interrupted atomic write: never completed
                    p.unlink()
            elif p.suffix == SUFFIX and p.stem.isdigit():
                found.append((int(p.stem), p.stat().st_size))
        found.sort()
        self._index = dict(found)
        self._next = found[-1][0] + 1 if found else 0
        self.bytes = sum(self._index.values())
        if found:
            log.info("spool %s: %d frames (%d bytes) waiting from before", self.directory, len(found), self.bytes)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:016d}{SUFFIX}"

    def __len__(self) -> int:
        return len(self._index)

    def put(self, params: AnalyzeParams, bitstream: bytes) -> int | None:
        """Store a frame; returns its sequence number, or None when the frame alone exceeds
        ``max_bytes`` (then it is dropped and counted, and the spool is left as it was)."""
        record = encode_record(params, bitstream)
        with self._lock:
            if len(record) > self.max_bytes:
                self.dropped += 1
                log.warning("spool: a %d-byte frame exceeds the spool's %d bytes; dropped", len(record),
                            self.max_bytes)
                return None
            while self._index and self.bytes + len(record) > self.max_bytes:
                self._drop_locked(next(iter(self._index)), "the spool is full")
            seq = self._next
            self._next += 1
            atomic_write_bytes(self._path(seq), record)
            self._index[seq] = len(record)
            self.bytes += len(record)
            return seq

    def peek(self) -> SpooledFrame | None:
        """The oldest readable frame, or None when empty (unreadable files are dropped on the way)."""
        while True:
            with self._lock:
                if not self._index:
                    return None
                seq = next(iter(self._index))
                try:
                    params, bitstream = decode_record(self._path(seq).read_bytes())
                except (OSError, ValueError) as exc:
                    self._drop_locked(seq, f"unreadable ({exc})")
                    continue
                return SpooledFrame(seq, params, bitstream)

    def remove(self, seq: int) -> None:
        """Forget a frame (delivered, or rejected by the cloud)."""
        with self._lock:
            self._forget_locked(seq)

    def _forget_locked(self, seq: int) -> None:
        size = self._index.pop(seq, None)
        if size is not None:
            self.bytes -= size
            with contextlib.suppress(FileNotFoundError):
                self._path(seq).unlink()

    def _drop_locked(self, seq: int, why: str) -> None:
        self._forget_locked(seq)
        self.dropped += 1
        log.warning("spool: dropped frame #%d: %s (%d dropped so far)", seq, why, self.dropped)

    def close(self) -> None:
        with self._lock:
            if self._lock_fd >= 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
