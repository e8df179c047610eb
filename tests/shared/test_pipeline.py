"""The one encode pipeline: frame → (preprocessor) → codec → bitstream → decode → tasks, and
the in-memory batch round trip training calls."""

from __future__ import annotations

import numpy as np
import pytest

from shared.codecs import InvalidQualityError, get_codec
from shared.pipeline import EncodePipeline, EncoderPool, decode, decoder_id, round_trip_batch
from shared.preprocess import GaussianBlur, PreprocessorError


@pytest.fixture(scope="module")
def frames(kodak_image: np.ndarray) -> np.ndarray:
    return np.stack([np.ascontiguousarray(kodak_image[y : y + 64, 100:164]) for y in (0, 100, 200)])


def test_encode_reports_bits_bpp_and_timings(frames: np.ndarray) -> None:
    pipe = EncodePipeline("jpeg")
    enc = pipe.encode(frames[0], 50)
    assert enc.bits == 8 * len(enc.bitstream) and enc.bpp == enc.bits / (64 * 64)
    assert (enc.codec, enc.quality, enc.width, enc.height, enc.preprocessor_id) == ("jpeg", 50, 64, 64, None)
    assert set(enc.timings_s) == {"encode"} and enc.timings_s["encode"] > 0
    dec = decode(enc.bitstream)  # codec found from the header
    assert dec.codec == "jpeg" and dec.image.shape == frames[0].shape
    assert dec.decoder_id == decoder_id("jpeg") == get_codec("jpeg").decoder_id()
    assert np.array_equal(dec.image, get_codec("jpeg").decode(enc.bitstream))
    with pytest.raises(InvalidQualityError):
        pipe.encode(frames[0], 1000)


def test_preprocessor_runs_before_the_codec_and_names_itself(frames: np.ndarray) -> None:
    plain = EncodePipeline("jpeg").encode(frames[0], 80)
    blurred = EncodePipeline("jpeg", preprocessor=GaussianBlur(1.5)).encode(frames[0], 80)
    assert blurred.preprocessor_id == "gaussian_blur_s1.5" and "preprocess" in blurred.timings_s
    assert blurred.bits < plain.bits
    with pytest.raises(PreprocessorError, match="expected uint8"):
        EncodePipeline("jpeg", preprocessor=lambda im, c, q: im[:10]).encode(frames[0], 80)


def test_batch_round_trip_matches_frame_by_frame_and_the_pool(frames: np.ndarray) -> None:
    codec = get_codec("bpg", level=1)
    decoded, bits = round_trip_batch(frames, codec, [40, 30, 20])
    assert bits.dtype == np.int64 and bits.shape == (3,) and bits[0] < bits[1] < bits[2]
    for f, d, b, q in zip(frames, decoded, bits, [40, 30, 20], strict=True):
        data = codec.encode(f, q)
        assert b == 8 * len(data) and np.array_equal(d, codec.decode(data))
    with EncoderPool(workers=2, max_queued=2) as pool:
        pooled, pooled_bits = round_trip_batch(list(frames), codec, [40, 30, 20], pool=pool)
    assert np.array_equal(pooled_bits, bits)
    assert all(np.array_equal(a, b) for a, b in zip(pooled, decoded, strict=True))
    with pytest.raises(ValueError, match="2 qualities for 3 frames"):
        round_trip_batch(frames, codec, [30, 30])


def test_pool_keeps_order_and_refuses_bad_sizes() -> None:
    with EncoderPool(workers=1, max_queued=1) as pool:
        assert list(pool.imap(abs, [-3, 2, -1])) == [3, 2, 1]
        assert pool.submit(pow, 2, 5).result() == 32
    with pytest.raises(ValueError, match="workers"):
        EncoderPool(workers=0)


def test_workers_exit_when_their_parent_is_killed() -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import sys, time\n"
              "from shared.pipeline import EncoderPool\n"
              "pool = EncoderPool(workers=1)\n"
              "pool.submit(abs, -1).result()\n"
              "print(*pool._executor._processes, flush=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert workers
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [w for w in alive if _alive(w)]
        assert not alive, f"encoder workers {alive} outlived their killed parent"
    finally:
        parent.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
