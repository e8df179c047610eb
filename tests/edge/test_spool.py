from __future__ import annotations

from pathlib import Path

import pytest

from edge.spool import Spool, SpoolError, decode_record, encode_record
from shared.wire import AnalyzeParams


def _params(i: int) -> AnalyzeParams:
    return AnalyzeParams(camera_id="cam-1", frame_id=i, captured_at=1000.0 + i, codec="bpg", quality=32)


def _drain(spool: Spool) -> list[int]:
    got = []
    while (f := spool.peek()) is not None:
        got.append(f.params.frame_id)
        spool.remove(f.seq)
    return got


def test_record_round_trip_and_garbage() -> None:
    p, body = _params(7), b"\x00BPG\xfb" * 10
    assert decode_record(encode_record(p, body)) == (p, body)
    for bad in (b"", b"PREPSPL1", b"NOTASPOOLRECORD", encode_record(p, body)[:14]):
        with pytest.raises(ValueError):
            decode_record(bad)


def test_fifo_order(tmp_path: Path) -> None:
    with Spool(tmp_path, 1 << 20) as spool:
        for i in range(5):
            spool.put(_params(i), bytes([i]) * 100)
        assert len(spool) == 5
        first = spool.peek()
        assert first is not None and first.params.frame_id == 0 and first.bitstream == bytes([0]) * 100
        assert spool.peek() == first  # peeking does not consume
        assert _drain(spool) == [0, 1, 2, 3, 4]
        assert len(spool) == 0 and spool.bytes == 0 and spool.dropped == 0
        assert list(tmp_path.glob("*.frame")) == []


def test_full_spool_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    size = len(encode_record(_params(0), b"x" * 1000))
    with Spool(tmp_path, 3 * size + 10) as spool:
        for i in range(7):
            spool.put(_params(i), b"x" * 1000)
            assert spool.bytes <= spool.max_bytes
        assert spool.dropped == 4
        assert _drain(spool) == [4, 5, 6]


def test_a_frame_larger_than_the_spool_is_dropped_alone(tmp_path: Path) -> None:
    with Spool(tmp_path, 500) as spool:
        assert spool.put(_params(0), b"a" * 100) is not None
        assert spool.put(_params(1), b"b" * 1000) is None
        assert spool.dropped == 1 and _drain(spool) == [0]


def test_survives_reopening_and_continues_the_sequence(tmp_path: Path) -> None:
    with Spool(tmp_path, 1 << 20) as spool:
        for i in range(3):
            spool.put(_params(i), b"frame")
        f = spool.peek()
        assert f is not None
        spool.remove(f.seq)
    (tmp_path / ".0000000000000009.frame.abc.tmp").write_bytes(b"half a write")  # a crash mid-write
    with Spool(tmp_path, 1 << 20) as again:
        assert len(again) == 2 and again.bytes == 2 * len(encode_record(_params(1), b"frame"))
        seq = again.put(_params(3), b"frame")
        assert seq == 3  # after the highest sequence number on disk
        assert _drain(again) == [1, 2, 3]
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_file_is_dropped_and_counted(tmp_path: Path) -> None:
    with Spool(tmp_path, 1 << 20) as spool:
        spool.put(_params(0), b"a")
        spool.put(_params(1), b"b")
    (tmp_path / f"{0:016d}.frame").write_bytes(b"garbage from a failing disk")
    with Spool(tmp_path, 1 << 20) as spool:
        assert _drain(spool) == [1]
        assert spool.dropped == 1


def test_one_process_owns_a_spool(tmp_path: Path) -> None:
    with Spool(tmp_path, 1000), pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path, 1000)
    Spool(tmp_path, 1000).close()  # released on close
