"""The cloud crashes (SIGKILL) while a camera streams: the edge spools what it cannot deliver, and
once the cloud is back on the same port and database every frame is stored exactly once."""

from __future__ import annotations

import threading

import httpx

from shared.wire import AnalyzeResult, EncodeResult
from tests.processes import metric
from tests.system.conftest import (
    CLOUD_AUTH,
    T0,
    Services,
    db_rows,
    readyz,
    scrape,
    send_frame,
    spool_frames,
    stored_results,
    wait_until,
)

N = 12
KILL_AFTER = 3  # frames the edge has delivered when the cloud dies


def test_every_frame_is_stored_exactly_once_across_a_cloud_crash(services: Services, frames: list[bytes]) -> None:
    cloud = services.cloud()
    edge = services.edge(cloud.url)
    services.start(cloud, edge)
    camera = "restart-cam"
    statuses: dict[int, int] = {}
    answers: dict[int, EncodeResult] = {}
    resume = threading.Event()

    def camera_stream() -> None:
        # a camera that keeps sending whatever happens to the cloud; it pauses once the cloud is
        # down and three frames were spooled, so the restart happens with frames still to come
        for i in range(N):
            if i == KILL_AFTER + 4:
                resume.wait(60)
            r = send_frame(edge, frames[i], camera, i)
            statuses[i] = r.status_code
            if r.status_code in (200, 202):
                answers[i] = EncodeResult.model_validate(r.json())

    sender = threading.Thread(target=camera_stream, name="camera")
    sender.start()
    try:
        wait_until(lambda: len(statuses) >= KILL_AFTER, 60, f"{KILL_AFTER} frames through the edge")
        cloud.kill()  # mid-stream: a request may be in flight right now
        wait_until(lambda: len(statuses) >= KILL_AFTER + 4 or not sender.is_alive(), 60, "frames while down")
        assert readyz(edge).json()["cloud_reachable"] is False
        assert spool_frames(edge) >= 3
        stored_before = {f for f, _ in db_rows(services.tmp / "cloud" / "results.db", camera)}
        cloud.start().wait_ready()  # same port, same SQLite file
    finally:
        resume.set()
        sender.join(120)
    assert not sender.is_alive()

    wait_until(lambda: spool_frames(edge) == 0, 60, "the edge's spool drained into the restarted cloud")
    assert set(statuses) == set(range(N)) and set(statuses.values()) <= {200, 202}, statuses
    spooled = [i for i, a in answers.items() if not a.delivered]
    assert len(spooled) >= 3 and all(statuses[i] == 202 for i in spooled)
    assert all(answers[i].cloud is not None for i in answers if i not in spooled)

    # exactly once, in the database and through the API
    rows = db_rows(services.tmp / "cloud" / "results.db", camera)
    assert sorted(f for f, _ in rows) == list(range(N)), rows
    listed = stored_results(cloud, camera)
    assert [x.frame_id for x in listed] == list(range(N))
    assert [x.captured_at for x in listed] == [T0 + i for i in range(N)]
    assert all(x.bits == answers[x.frame_id].bits for x in listed)  # the bitstream the edge made, not another

    e = scrape(edge)
    delivered = metric(e, "prepicm_edge_frames_total", camera=camera, outcome="delivered")
    spool_delivered = metric(e, "prepicm_edge_frames_total", camera=camera, outcome="spool_delivered")
    assert metric(e, "prepicm_edge_frames_total", camera=camera, outcome="spooled") == len(spooled)
    assert spool_delivered == len(spooled)
    assert delivered + spool_delivered == N
    assert metric(e, "prepicm_edge_frames_total", camera=camera, outcome="spool_rejected") == 0
    assert metric(e, "prepicm_edge_spool_dropped_total") == 0

    # the restarted cloud analysed exactly what the crashed one had not stored; a spooled frame the
    # crashed one had stored (its answer lost with it) came back as a duplicate
    c = scrape(cloud)
    analyzed_now = metric(c, "prepicm_cloud_frames_total", camera=camera, outcome="analyzed")
    assert analyzed_now == N - len(stored_before)
    assert metric(c, "prepicm_cloud_frames_total", camera=camera, outcome="duplicate") == len(
        stored_before & set(spooled))

    # a frame delivered before the crash, sent again: answered from the store, counted nowhere
    with httpx.Client(base_url=cloud.url, headers=CLOUD_AUTH, timeout=30) as http:
        first = listed[0]
        again = http.post("/analyze", params={"camera_id": camera, "frame_id": 0, "captured_at": T0},
                          content=b"BPG\xfb not even a real stream this time",
                          headers={"content-type": "application/octet-stream"})
    assert again.status_code == 200, again.text
    dup = AnalyzeResult.model_validate(again.json())
    assert dup.duplicate and dup.model_copy(update={"duplicate": False}) == first
    through_edge = send_frame(edge, frames[0], camera, 1)
    assert through_edge.status_code == 200, through_edge.text
    assert EncodeResult.model_validate(through_edge.json()).cloud.duplicate  # type: ignore[union-attr]
    assert len(db_rows(services.tmp / "cloud" / "results.db", camera)) == N
    c2 = scrape(cloud)
    assert metric(c2, "prepicm_cloud_duplicates_total") == metric(c, "prepicm_cloud_duplicates_total") + 2
    assert metric(c2, "prepicm_cloud_frames_total", camera=camera, outcome="analyzed") == analyzed_now
