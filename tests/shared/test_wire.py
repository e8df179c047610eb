from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.wire import AnalyzeParams, AnalyzeResult, TaskResult


def test_params_validate_ids_and_split_tasks() -> None:
    p = AnalyzeParams(camera_id="cam-01", frame_id=7, captured_at=1.5, tasks="yolov5n, efficientnet_lite0")
    assert p.task_list() == ["yolov5n", "efficientnet_lite0"]
    for bad in ({"camera_id": "../etc", "frame_id": 1, "captured_at": 0},
                {"camera_id": "c", "frame_id": -1, "captured_at": 0},
                {"camera_id": "c", "frame_id": 1, "captured_at": 0, "extra": 1}):
        with pytest.raises(ValidationError):
            AnalyzeParams(**bad)


def test_result_round_trips_through_json() -> None:
    r = AnalyzeResult(camera_id="c", frame_id=1, captured_at=0, codec="bpg", width=4, height=2, bits=80, bpp=10,
                      decoder_id="bpg-x", received_at=1,
                      results=[TaskResult(task="t", kind="classification", output={"top": []}, seconds=0.1)])
    assert AnalyzeResult.model_validate_json(r.model_dump_json()) == r
