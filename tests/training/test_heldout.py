"""Scoring finished runs on their held-out pictures, side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shared.paths import repo_root
from training.npp import build_npp
from training.train.config import ConfigError, load_config
from training.train.heldout import main, parse_run, score_runs, table
from training.train.loop import CHECKPOINT

SMOKE = repo_root() / "configs" / "training" / "smoke.yaml"


def _checkpoint(path: Path) -> Path:
    """A test_tiny network with every weight halved: it changes the pictures the codec is given."""
    torch.manual_seed(0)
    npp = build_npp("test_tiny")
    with torch.no_grad():
        for p in npp.parameters():
            p.mul_(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": npp.state_dict(), "variant": "test_tiny"}, path)
    return path


def test_runs_are_scored_against_one_plain_pass(tmp_path: Path, data_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    overrides = {"out": str(tmp_path / "a"), "validate_qualities": [28, 40], "validate_tasks": [],
                 "validate_bootstrap": 10, "data": {"first": 200, "count": 4, "holdout_count": 3, "crop": 48}}
    cfg = load_config(SMOKE, overrides)
    darker = _checkpoint(tmp_path / "darker.pt")
    runs = [(cfg, darker), (cfg, darker)]
    a, b = score_runs(runs, workers=1)
    assert a.plain is b.plain  # coded once
    assert a.npp.bits.shape == (2, 3) and (a.npp.bits == b.npp.bits).all()  # the codec is deterministic
    assert (a.npp.bits != a.plain.bits).any()
    text = table(runs, [a, b])
    assert text.count("\n| smoke |") == 2 and "BD-rate at equal KL, efficientnet_lite0" in text
    # another held-out set cannot share the plain pass
    other = load_config(SMOKE, {**overrides, "data": {**overrides["data"], "holdout_count": 2}})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="other pictures"):
        score_runs([(cfg, darker), (other, darker)], workers=1)
    assert parse_run(f"{SMOKE}")[1].name == CHECKPOINT
    assert main([f"{SMOKE}={tmp_path / 'missing.pt'}", "--workers", "1"]) == 2
    assert "error:" in capsys.readouterr().err
