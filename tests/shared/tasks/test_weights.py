from __future__ import annotations

from pathlib import Path

import pytest

from shared.tasks import TASKS, WeightsNotFoundError, get_task, task_kind
from shared.tasks.weights import torch_hub_checkpoints_dir

STABLE_NAMES = {
    "efficientnet_lite0",
    "mobilenet_v2",
    "yolov5n",
    "mtcnn",
    "fcos_resnet50_fpn",
    "fasterrcnn_resnet50_fpn",
    "retinanet_resnet50_fpn",
    "resnet50",
    "resnext50_32x4d",
    "swin_t",
    "vit_b_16",
}


def test_registry_names_and_kinds() -> None:
    assert set(TASKS.names()) == STABLE_NAMES
    assert {task_kind(n) for n in STABLE_NAMES} == {"classification", "detection", "faces"}
    assert task_kind("yolov5n") == "detection" and task_kind("mtcnn") == "faces"


def test_explicit_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_weights.pth"
    with pytest.raises(WeightsNotFoundError) as e:
        get_task("efficientnet_lite0", weights=missing)
    assert str(missing) in str(e.value) and "efficientnet_lite0" in str(e.value)


def test_default_lookup_names_every_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_runtime: None) -> None:
    monkeypatch.setenv("PREPICM_SHARED_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import torch

    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # let TORCH_HOME take effect
    with pytest.raises(WeightsNotFoundError) as e:
        get_task("yolov5n")
    msg = str(e.value)
    assert "yolov5n_state_dict.pt" in msg
    assert str(tmp_path / "shared" / "weights" / "yolov5n_state_dict.pt") in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "yolov5n_state_dict.pt") in msg
    with pytest.raises(WeightsNotFoundError, match=r"resnet50-0676ba61\.pth") as e2:
        get_task("resnet50")
    assert str(torch_hub_checkpoints_dir()) in str(e2.value)


def test_hub_cache_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user-supplied file in the torch hub cache is found (random weights saved there)."""
    import torch

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    net = get_task("resnet50", random_init=True)
    ckpt = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(net.module.state_dict(), ckpt)
    loaded = get_task("resnet50")
    assert loaded.weights_path == ckpt and "RANDOM" not in repr(loaded)


def test_random_init_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not both"):
        get_task("resnet50", weights=tmp_path / "x.pth", random_init=True)
    assert "RANDOM" in get_task("resnet50", random_init=True).weights_description


def test_random_models_never_share_an_identity() -> None:
    import torch

    torch.manual_seed(0)
    a = get_task("resnet50", random_init=True)
    torch.manual_seed(1)
    b = get_task("resnet50", random_init=True)
    assert a.weights_identity.startswith("random:") and a.weights_identity != b.weights_identity
