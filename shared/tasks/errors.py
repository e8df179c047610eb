"""Typed errors of the task-model layer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class TaskError(Exception):
    """Base class of every task-model error."""


class WeightsNotFoundError(TaskError, FileNotFoundError):
    """No weights file was found for a task model; the message names the file and every place tried."""

    def __init__(self, model: str, wanted: str, looked_in: Sequence[Path | str], hint: str = "") -> None:
        self.model = model
        self.wanted = wanted
        self.looked_in = [str(p) for p in looked_in]
        places = "\n".join(f"  - {p}" for p in self.looked_in) or "  (nowhere)"
        msg = f"weights for task model {model!r} not found: {wanted}\nlooked in:\n{places}"
        if hint:
            msg += f"\n{hint}"
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


class TaskDependencyError(TaskError, ImportError):
    """An optional package a task model needs is not installed."""


class InvalidTargetError(TaskError, TypeError):
    """The target handed to `TaskModel.loss` does not fit the task kind."""
