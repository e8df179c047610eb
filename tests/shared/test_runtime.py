from __future__ import annotations

from pathlib import Path

import pytest

from shared.runtime import RuntimeSettingsError, apply_runtime, current_runtime, runtime_settings


def test_settings_come_from_the_given_environment_only() -> None:
    s = runtime_settings({"PREPICM_X265_POOLS": "3", "PREPICM_ENCODE_WORKERS": "4", "PREPICM_CACHE_DIR": "~/c"})
    assert s.x265_pools == 3 and s.encode_workers == 4 and s.cache_dir == Path("~/c").expanduser()
    assert s.x265_params() == ":pools=3"
    assert runtime_settings({}).x265_params() == "" and runtime_settings({}).encode_workers == 2
    assert runtime_settings({"PREPICM_ENCODE_WORKERS": "4"}, encode_workers=1).encode_workers == 1


@pytest.mark.parametrize(("var", "value"), [("PREPICM_ENCODE_WORKERS", "0"), ("PREPICM_ORT_THREADS", "many")])
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(RuntimeSettingsError, match=var):
        runtime_settings({var: value})


def test_applied_settings_are_what_codecs_see() -> None:
    import shared.runtime as rt

    saved = rt._active
    try:
        s = apply_runtime(runtime_settings({}, x265_frame_threads=1))
        assert current_runtime() is s and s.x265_params() == ":frame-threads=1"
    finally:
        rt._active = saved


def test_child_environment_drops_prefixes_and_adds_overrides() -> None:
    from shared.runtime import child_environment

    parent = {"PATH": "/bin", "PREPICM_EDGE_PORT": "1", "PREPICM_X265_POOLS": "2"}
    env = child_environment({"PREPICM_EDGE_DEV": "true"}, drop_prefixes=("PREPICM_EDGE_",), environ=parent)
    assert env == {"PATH": "/bin", "PREPICM_X265_POOLS": "2", "PREPICM_EDGE_DEV": "true"}
    assert child_environment({}, environ=parent) == parent and parent["PREPICM_EDGE_PORT"] == "1"
