"""Data-parallel training under torchrun (gloo on CPU): one log and one checkpoint for the run,
the global batch split between processes, and a checkpoint that resumes in a single process."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shared.paths import repo_root
from training.train.config import load_config
from training.train.distributed import Distributed, DistributedError, resolve_device
from training.train.loop import CHECKPOINT, LOG, load_checkpoint, train

SMOKE = repo_root() / "configs" / "training" / "smoke.yaml"


def _torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "training.train", "--config", str(SMOKE), "--device", "cpu", "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=repo_root(), timeout=300, check=False)


def test_rows_split_the_global_batch() -> None:
    parts = [Distributed(r, 4, torch.device("cpu")).rows(8) for r in range(4)]
    assert [(s.start, s.stop) for s in parts] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    one = Distributed(0, 1, torch.device("cpu"))
    assert one.rows(5) == slice(0, 5) and one.wrap(torch.nn.Identity()).__class__ is torch.nn.Identity
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(DistributedError, match="no CUDA"):
            resolve_device("cuda")


def test_two_processes_train_one_run_that_resumes_in_one(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "ddp"
    r = _torchrun(2, "--out", str(out), "--steps", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("step 2 on 2 process(es)") == 1  # printed by rank 0 only
    rows = list(csv.DictReader((out / LOG).open()))
    assert [row["step"] for row in rows] == ["1", "2"]  # one log, not one per process
    assert all(float(row["rate_bpp"]) > 0 and float(row["total"]) > 0 for row in rows)
    ck = load_checkpoint(out / CHECKPOINT)
    assert ck["step"] == 2
    # the checkpoint is the run's, whatever ran it: one plain process continues it
    ran: list[int] = []
    train(load_config(SMOKE, {"out": str(out), "steps": 3, "device": "cpu"}), on_step=lambda s, _r: ran.append(s))
    assert ran == [3] and load_checkpoint(out / CHECKPOINT)["step"] == 3


def test_a_batch_that_does_not_split_is_one_clear_error(tmp_path: Path) -> None:
    r = _torchrun(3, "--out", str(tmp_path / "bad"), "--steps", "1")  # smoke's batch_size is 2
    assert r.returncode != 0
    assert "error: batch_size 2 does not split over 3 processes" in r.stderr
