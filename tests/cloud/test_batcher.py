"""Dynamic batching: concurrent frames for one task run as one predict() call, each frame still
gets its own output; the batch-size histogram shows it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cloud.batcher import Arrivals, Batcher, BatcherClosedError
from cloud.main import create_app
from shared.tasks import TaskModel, get_task
from tests.cloud.conftest import AUTH, Frame, make_settings, metric


@pytest.fixture(scope="module")
def classifier() -> TaskModel:
    return get_task("efficientnet_lite0")


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_one_predict_for_frames_that_arrive_together(classifier: TaskModel, frames: list[Frame]) -> None:
    sizes: list[int] = []

    async def go() -> list:  # type: ignore[type-arg]
        b = Batcher(classifier, max_batch=8, max_delay_s=0.5, on_batch=lambda n, _s: sizes.append(n))
        b.start()
        try:
            return await asyncio.gather(*(b.predict(f.rgb) for f in frames))
        finally:
            await b.close()

    preds = _run(go())
    assert sizes == [len(frames)]
    assert [p.batch_size for p in preds] == [len(frames)] * len(frames)
    # each frame gets its own output, the one an unbatched predict gives
    alone = [classifier.predict([f.rgb])[0] for f in frames]
    assert [p.output.top1 for p in preds] == [a.top1 for a in alone]
    np.testing.assert_allclose(preds[1].output.probs, alone[1].probs, atol=1e-4)


def test_batches_are_capped_at_max_batch(classifier: TaskModel, frames: list[Frame]) -> None:
    sizes: list[int] = []

    async def go() -> None:
        b = Batcher(classifier, max_batch=2, max_delay_s=0.2, on_batch=lambda n, _s: sizes.append(n))
        b.start()
        try:
            await asyncio.gather(*(b.predict(frames[i % 3].rgb) for i in range(5)))
        finally:
            await b.close()

    _run(go())
    assert sizes == [2, 2, 1]


def test_close_fails_waiting_frames_and_refuses_new_ones(classifier: TaskModel, frames: list[Frame]) -> None:
    async def go() -> tuple[list[object], BaseException | None]:
        b = Batcher(classifier, max_batch=64, max_delay_s=5.0)  # gathers for 5 s: close comes first
        b.start()
        waiting = [asyncio.ensure_future(b.predict(frames[0].rgb)) for _ in range(3)]
        await asyncio.sleep(0.05)
        await b.close()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        try:
            await b.predict(frames[0].rgb)
        except BatcherClosedError as exc:
            return results, exc
        return results, None

    results, refused = _run(go())
    assert all(isinstance(r, BatcherClosedError) for r in results)
    assert isinstance(refused, BatcherClosedError)


def test_no_wait_when_nothing_else_is_on_its_way(classifier: TaskModel, frames: list[Frame]) -> None:
    """A lone frame runs at once instead of waiting out max_delay (here far longer than the test may take)."""
    arrivals = Arrivals()

    async def go() -> int:
        b = Batcher(classifier, max_batch=8, max_delay_s=600.0, arrivals=arrivals)
        b.start()
        try:
            return (await asyncio.wait_for(b.predict(frames[0].rgb), 120)).batch_size
        finally:
            await b.close()

    assert _run(go()) == 1


def test_waits_for_a_frame_on_its_way(classifier: TaskModel, frames: list[Frame]) -> None:
    arrivals = Arrivals()
    sizes: list[int] = []

    async def go() -> None:
        b = Batcher(classifier, max_batch=8, max_delay_s=600.0, on_batch=lambda n, _s: sizes.append(n),
                    arrivals=arrivals)
        b.start()
        try:
            arrivals.count = 1  # a second request is still being decoded
            first = b.submit(frames[0].rgb)
            await asyncio.sleep(0.1)
            second = b.submit(frames[1].rgb)
            arrivals.count = 0
            await asyncio.wait_for(asyncio.gather(first, second), 120)
        finally:
            await b.close()

    _run(go())
    assert sizes == [2]


def test_parameters_are_checked(classifier: TaskModel) -> None:
    with pytest.raises(ValueError):
        Batcher(classifier, max_batch=0, max_delay_s=0.01)


@pytest.fixture(scope="module")
def batching_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("batching"), TASKS="efficientnet_lite0", MAX_BATCH=4,
                             MAX_DELAY_MS=1000)
    with TestClient(create_app(settings)) as c:
        yield c


def test_concurrent_requests_share_batches(batching_client: TestClient, frames: list[Frame]) -> None:
    c, n = batching_client, 8
    count0 = metric(c, "prepicm_cloud_batch_size_count")
    sum0 = metric(c, "prepicm_cloud_batch_size_sum")
    singles0 = metric(c, "prepicm_cloud_batch_size_bucket", le="1.0")
    barrier = threading.Barrier(n)
    answers: dict[int, dict] = {}  # type: ignore[type-arg]

    def post(i: int) -> None:
        barrier.wait()
        r = c.post("/analyze", params={"camera_id": "batch", "frame_id": i, "captured_at": 1.0},
                   content=frames[i % 3].bitstream, headers=AUTH)
        answers[i] = r.json()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(answers) == list(range(n)) and all("results" in a for a in answers.values()), answers
    batches = metric(c, "prepicm_cloud_batch_size_count") - count0
    assert metric(c, "prepicm_cloud_batch_size_sum") - sum0 == n
    assert batches < n, "every frame ran alone"
    assert metric(c, "prepicm_cloud_batch_size_bucket", le="1.0") - singles0 < batches  # some batch > 1
    # frames of the same picture got the same answer, whichever batch they ran in
    top1 = {i: a["results"][0]["output"]["top"][0]["index"] for i, a in answers.items()}
    assert len({top1[0], top1[1], top1[2]}) == 3  # the three pictures are told apart, so a mix-up shows
    for i in range(n):
        assert top1[i] == top1[i % 3]
