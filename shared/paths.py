"""Where the project's shared data and weights live.

The shared folder (images, labels, detector weights) sits beside the repository as `../shared`;
`PREPICM_SHARED_DIR` points elsewhere (a mounted volume in a container, a CI cache).
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIR_ENV = "PREPICM_SHARED_DIR"


def repo_root() -> Path:
    """The repository root: the folder that holds the top-level `shared` package."""
    return Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data/weights folder: `$PREPICM_SHARED_DIR`, else `<repo root>/../shared`."""
    env = os.environ.get(SHARED_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return (repo_root() / ".." / "shared").resolve()


def shared_weights_dir() -> Path:
    """`<shared>/weights`, where downloaded-once detector weights are kept."""
    return shared_data_dir() / "weights"
