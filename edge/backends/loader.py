"""Open an exported NPP artifact directory: read + validate the manifest, verify file hashes,
check it is what the caller asked for."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from shared.manifest import (
    ArtifactFile,
    ManifestError,
    ManifestMismatchError,
    NppManifest,
    load_manifest,
    verify_file,
)

log = logging.getLogger("edge.backends")


class UntrainedArtifactError(ManifestError):
    """The artifact holds random weights and the caller asked for a trained one."""


@dataclass(frozen=True)
class Artifact:
    directory: Path
    manifest: NppManifest

    def file(self, entry: ArtifactFile) -> Path:
        """Path of a manifest entry, after checking its sha256."""
        return verify_file(self.directory, entry)


def load_artifact(
    directory: Path | str,
    variant: str | None = None,
    codec: str | None = None,
    quality: float | None = None,
    require_trained: bool = False,
) -> Artifact:
    """Validate ``directory``'s manifest against the request; raise a ManifestError subclass if not.

    Files are hashed by the backend that opens them (``Artifact.file``), so a backend pays only for
    the files it uses (a 38 MB ONNX hashes in ~0.1 s).
    """
    path = Path(directory)
    manifest = load_manifest(path)
    manifest.check_variant(variant)
    if require_trained and not manifest.training.trained:
        raise UntrainedArtifactError(f"{path}: NPP {manifest.variant!r} is UNTRAINED (random weights)")
    if not manifest.training.trained:
        log.warning("NPP artifact %s (%s) is UNTRAINED: random weights, output is not meaningful",
                    path, manifest.variant)
    if codec is not None:
        if quality is None:
            raise ManifestMismatchError("a codec was given without its quality")
        manifest.check_operating_point(codec, quality)
    return Artifact(path, manifest)
