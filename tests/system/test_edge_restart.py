"""Frames spooled while the cloud was down survive an edge crash (SIGKILL): the restarted edge
finds them in its spool directory and delivers every one, oldest first, exactly once."""

from __future__ import annotations

from shared.wire import EncodeResult
from tests.processes import free_port, metric
from tests.system.conftest import T0, Services, db_rows, scrape, send_frame, spool_frames, stored_results, wait_until

N = 6


def test_spooled_frames_survive_an_edge_crash(services: Services, frames: list[bytes]) -> None:
    cloud_port = free_port()  # nothing listens there until the cloud starts
    cloud = services.cloud(port=cloud_port)
    edge = services.edge(f"http://127.0.0.1:{cloud_port}")
    spool_dir = services.tmp / "edge-spool"
    camera = "spool-cam"
    edge.start().wait_ready()
    for i in range(N):
        r = send_frame(edge, frames[i], camera, i)
        assert r.status_code == 202, r.text
        res = EncodeResult.model_validate(r.json())
        assert not res.delivered and res.cloud is None and res.frame_id == i
    assert spool_frames(edge) == N
    edge.kill()
    assert len(list(spool_dir.glob("*.frame"))) == N  # on disk, waiting

    # the cloud starts only now: started earlier, it could come up on a loaded machine while the
    # frames were still being sent, and the edge would deliver some of them before the crash
    cloud.start().wait_ready()
    edge.start().wait_ready()  # same spool directory: the crashed edge's lock died with it
    wait_until(lambda: spool_frames(edge) == 0, 60, "the restarted edge delivered its spool")
    assert not list(spool_dir.glob("*.frame"))

    rows = db_rows(services.tmp / "cloud" / "results.db", camera)
    assert [f for f, _ in rows] == list(range(N)), rows  # stored once each, in the order they were taken
    received = [t for _, t in rows]
    assert received == sorted(received)
    listed = stored_results(cloud, camera)
    assert [(x.frame_id, x.captured_at, x.duplicate) for x in listed] == [(i, T0 + i, False) for i in range(N)]
    assert all(x.results[0].task == "efficientnet_lite0" for x in listed)

    e = scrape(edge)  # the restarted edge's own counters
    assert metric(e, "prepicm_edge_frames_total", camera=camera, outcome="spool_delivered") == N
    assert metric(e, "prepicm_edge_frames_total", camera=camera, outcome="spool_rejected") == 0
    assert metric(e, "prepicm_edge_spool_dropped_total") == 0
    c = scrape(cloud)
    assert metric(c, "prepicm_cloud_frames_total", camera=camera, outcome="analyzed") == N
    assert metric(c, "prepicm_cloud_duplicates_total") == 0
