"""Typed errors of the inference backends."""

from __future__ import annotations


class BackendError(Exception):
    """An inference backend cannot be created or cannot run."""


class BackendUnavailableError(BackendError):
    """The backend's runtime, or the device it needs, is missing here."""


class MissingDependencyError(BackendUnavailableError):
    """An optional package is not installed; the message names the extra that provides it."""

    def __init__(self, package: str, extra: str, backend: str) -> None:
        self.package, self.extra, self.backend = package, extra, backend
        super().__init__(
            f"the {backend} backend needs the '{package}' package: pip install 'prepicm[{extra}]'"
        )


class InputError(BackendError, ValueError):
    """Images given to ``run`` are not NCHW float32 in [0,1] nor HWC / NHWC uint8."""
