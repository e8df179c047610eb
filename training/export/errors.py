"""Typed errors of the export step."""

from __future__ import annotations


class ExportError(Exception):
    """An artifact could not be produced."""


class ParityError(ExportError):
    """An exported artifact disagrees with the PyTorch model beyond tolerance."""


class CheckpointError(ExportError):
    """A checkpoint is missing, unreadable or does not fit the requested variant."""


class TensorRTUnavailableError(ExportError):
    """TensorRT (or a CUDA GPU) is not available here."""
