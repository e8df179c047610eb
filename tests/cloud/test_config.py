"""CloudSettings: the service contract's fields, parsed from PREPICM_CLOUD_*, unsafe values refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud.core.config import CloudSettings
from shared.paths import cache_dir


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("PREPICM_CLOUD_")]:
        monkeypatch.delenv(key)


def test_defaults_in_dev() -> None:
    s = CloudSettings(DEV=True)
    assert (s.HOST, s.PORT, s.TASKS, s.DEVICE) == ("127.0.0.1", 8001, ("yolov5n",), "cpu")
    assert (s.MAX_BATCH, s.MAX_DELAY_MS, s.MAX_BODY_BYTES, s.MAX_PIXELS) == (8, 10.0, 8 * 1024 * 1024, 40_000_000)
    assert s.database_url() == f"sqlite:///{cache_dir('cloud') / 'results.db'}"
    assert s.token is None


def test_token_required_outside_dev() -> None:
    with pytest.raises(ValidationError, match="PREPICM_CLOUD_TOKEN is required"):
        CloudSettings()
    with pytest.raises(ValidationError, match="PREPICM_CLOUD_TOKEN is required"):
        CloudSettings(TOKEN="   ")
    assert CloudSettings(TOKEN="s3cret").token == "s3cret"
    assert "s3cret" not in repr(CloudSettings(TOKEN="s3cret"))


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREPICM_CLOUD_TOKEN", "t")
    monkeypatch.setenv("PREPICM_CLOUD_TASKS", " yolov5n , EfficientNet_Lite0 ")
    monkeypatch.setenv("PREPICM_CLOUD_TASK_OPTIONS", '{"yolov5n": {"img_size": 320}}')
    monkeypatch.setenv("PREPICM_CLOUD_MAX_PIXELS", "40e6")
    monkeypatch.setenv("PREPICM_CLOUD_DATABASE_URL", "postgresql://u@db:5432/prepicm")
    monkeypatch.setenv("PREPICM_CLOUD_DEVICE", "cuda:1")
    s = CloudSettings()
    assert s.TASKS == ("yolov5n", "efficientnet_lite0")
    assert s.task_options("YOLOv5n") == {"img_size": 320} and s.task_options("efficientnet_lite0") == {}
    assert s.MAX_PIXELS == 40_000_000 and s.DEVICE == "cuda:1"
    assert s.database_url() == "postgresql://u@db:5432/prepicm"


@pytest.mark.parametrize("bad", [
    {"TASKS": "yolov5n,nope"}, {"TASKS": ""}, {"TASKS": "yolov5n,YOLOv5n"}, {"TASK_OPTIONS": {"nope": {}}},
    {"DEVICE": "tpu"}, {"MAX_BATCH": 0}, {"MAX_DELAY_MS": -1}, {"MAX_BODY_BYTES": 10}, {"MAX_PIXELS": 0},
    {"MAX_PIXELS": "4.5"}, {"DATABASE_URL": "mysql://x"}, {"PORT": 70000}, {"LOG_LEVEL": "loud"},
    {"UNKNOWN": 1},
])
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CloudSettings(DEV=True, **bad)
