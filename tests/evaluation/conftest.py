"""Fixtures for the evaluation tests: a real classifier loaded once, tiny data subsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def imagenet_val(shared_dir: Path) -> Path:
    return shared_dir / "data" / "imagenet" / "val"


@pytest.fixture(scope="session")
def coco_val(shared_dir: Path) -> Path:
    return shared_dir / "data" / "coco"


@pytest.fixture(scope="session")
def classifier() -> Any:
    tasks = pytest.importorskip("shared.tasks")
    return tasks.get_task("efficientnet_lite0")
