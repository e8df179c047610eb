"""Finding weight files offline: an explicit path, the shared weights folder, an installed pip
package that ships the file, or the torch hub checkpoint cache. Nothing here ever downloads."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.paths import shared_weights_dir
from shared.tasks.errors import WeightsNotFoundError


@dataclass(frozen=True)
class WeightsSpec:
    """Where a model's weights file may be found.

    filename: the file's name, looked for in the shared weights folder and the torch hub cache
    (`<torch hub dir>/checkpoints/<filename>`, the name torchvision's weights API would use).
    packages: (pip package import name, path inside it) pairs for packages that bundle the file.
    description: one line for users (what the weights are, where they come from).
    """

    filename: str
    description: str
    packages: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    in_shared_dir: bool = False


def torch_hub_checkpoints_dir() -> Path:
    """`<torch hub dir>/checkpoints`; torch's own rule ($TORCH_HOME, $XDG_CACHE_HOME/torch)
    without importing torch, or torch.hub.get_dir() when torch is already loaded (set_dir)."""
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None:
        return Path(torch_mod.hub.get_dir()) / "checkpoints"
    from shared.runtime import current_runtime

    s = current_runtime()
    torch_home = s.torch_home or (s.xdg_cache_home or Path("~/.cache").expanduser()) / "torch"
    return torch_home / "hub" / "checkpoints"


def package_dir(package: str) -> Path | None:
    """The install folder of a pip package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def candidate_paths(spec: WeightsSpec) -> list[Path | str]:
    """Every place `resolve_weights` looks, in order (a missing package is listed as such)."""
    places: list[Path | str] = []
    if spec.in_shared_dir:
        places.append(shared_weights_dir() / spec.filename)
    for package, relpath in spec.packages:
        root = package_dir(package)
        places.append(root / relpath if root else f"pip package {package!r} (not installed)")
    places.append(torch_hub_checkpoints_dir() / spec.filename)
    return places


def resolve_weights(model: str, spec: WeightsSpec, explicit: str | Path | None = None) -> Path:
    """The weights file for `model`: `explicit` if given (it must exist), else the first hit of
    `candidate_paths`. Raises WeightsNotFoundError naming the file and every place tried."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        # A bare file name is also looked up in the torch hub cache, like torchvision does.
        tried: list[Path | str] = [path]
        if path.parent == Path("."):
            cached = torch_hub_checkpoints_dir() / path.name
            tried.append(cached)
            if cached.is_file():
                return cached
        raise WeightsNotFoundError(model, str(explicit), tried)
    places = candidate_paths(spec)
    for place in places:
        if isinstance(place, Path) and place.is_file():
            return place
    hint = f"Supply the file with weights=PATH or place it in {torch_hub_checkpoints_dir()} ({spec.description})."
    raise WeightsNotFoundError(model, spec.filename, places, hint)


def load_state_dict(path: Path) -> dict[str, Any]:
    """Load a plain state_dict safely (weights_only=True: no pickled code runs)."""
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # checkpoints saved as {"state_dict": ...}
    if not isinstance(obj, Mapping):
        raise TypeError(f"{path} does not hold a state_dict (found {type(obj).__name__})")
    return dict(obj)
