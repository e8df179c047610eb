"""Static checks of the Dockerfiles and the compose file (no Docker engine on CI)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _extras() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_compose_services_build_from_existing_dockerfiles_with_known_extras() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["services"], "compose file defines no services"
    for name, svc in compose["services"].items():
        build = svc["build"]
        dockerfile = REPO / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        extra = build.get("args", {}).get("EXTRAS")
        assert extra is None or extra in _extras(), f"{name}: unknown extra {extra}"


def test_dockerfile_copies_only_existing_paths() -> None:
    for dockerfile in (REPO / "deploy").glob("Dockerfile*"):
        text = dockerfile.read_text()
        assert text.startswith("#") or text.startswith("FROM")
        for line in text.splitlines():
            m = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line)
            if m:
                for src in m.group(1).split():
                    assert (REPO / src).exists(), f"{dockerfile.name}: COPY source {src} missing"
        default = re.search(r"ARG EXTRAS=(\S+)", text)
        assert default is None or default.group(1) in _extras()
