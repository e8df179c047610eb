from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.core.config import EdgeSettings


def test_cloud_token_required_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREPICM_EDGE_CLOUD_TOKEN", raising=False)
    monkeypatch.delenv("PREPICM_EDGE_DEV", raising=False)
    with pytest.raises(ValidationError, match="CLOUD_TOKEN is required"):
        EdgeSettings()
    assert EdgeSettings(DEV=True).CLOUD_TOKEN is None
    assert EdgeSettings(CLOUD_TOKEN="s3cret").CLOUD_TOKEN.get_secret_value() == "s3cret"  # type: ignore[union-attr]


def test_environment_prefix_and_json_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREPICM_EDGE_DEV", "true")
    monkeypatch.setenv("PREPICM_EDGE_PORT", "8123")
    monkeypatch.setenv("PREPICM_EDGE_CODEC_OPTIONS", '{"bpg": {"level": 3}}')
    monkeypatch.setenv("PREPICM_EDGE_BANDWIDTH_BUDGETS", '{"*": {"bits_per_second": 2e5, "fps": 4}}')
    s = EdgeSettings()
    assert s.PORT == 8123 and s.codec_options("bpg") == {"level": 3}
    budget = s.budget_for("any-camera")
    assert budget is not None and budget.bits_per_frame == 5e4
    assert s.HOST == "127.0.0.1" and s.CLOUD_URL == "http://127.0.0.1:8001" and s.QUALITY == 32


@pytest.mark.parametrize("bad", [{"CODEC": "mp3"}, {"QUALITY": 77}, {"CODEC_OPTIONS": {"nope": {}}},
                                 {"CLOUD_URL": "ftp://x"}, {"SPOOL_MAX_BYTES": 0}])
def test_unsafe_or_unknown_values_fail_fast(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EdgeSettings(DEV=True, **bad)  # type: ignore[arg-type]


def test_the_shipped_npp_is_the_default_and_none_turns_it_off() -> None:
    from shared.paths import shipped_npp_dir

    shipped = shipped_npp_dir()
    expected = shipped if (shipped / "manifest.json").is_file() else None
    assert expected == EdgeSettings(DEV=True).NPP_ARTIFACT
    for off in ("none", "None", ""):
        assert EdgeSettings(DEV=True, NPP_ARTIFACT=off).NPP_ARTIFACT is None  # type: ignore[arg-type]
