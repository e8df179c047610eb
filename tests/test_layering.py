"""The package boundaries of docs/ARCHITECTURE.md, checked on the source: ``shared`` is the
library everything stands on and imports none of the applications; ``edge``, ``cloud`` and
``training`` never import each other; only ``shared.runtime`` reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("evaluation", "edge", "cloud", "training", "demo")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _offenders(package: str, forbidden: set[str]) -> list[str]:
    return sorted(f"{p.relative_to(ROOT)} imports {', '.join(sorted(_imports(p) & forbidden))}"
                  for p in (ROOT / package).rglob("*.py") if _imports(p) & forbidden)


def test_shared_imports_no_application() -> None:
    assert list((ROOT / "shared").rglob("*.py")), "shared/ not found"
    assert _offenders("shared", set(APPS)) == []


@pytest.mark.parametrize("package", ["edge", "cloud", "training", "demo"])
def test_services_and_training_do_not_import_each_other(package: str) -> None:
    """The demo talks to edge and cloud only as processes over HTTP."""
    assert _offenders(package, set(APPS) - {package}) == []


def test_the_detector_finds_a_forbidden_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom edge.backends import create_backend\n")
    assert _imports(f) == {"os", "edge"}


def test_only_the_runtime_module_reads_the_environment() -> None:
    readers = []
    for package in ("shared", *APPS):
        for p in (ROOT / package).rglob("*.py"):
            text = p.read_text()
            if ("os.environ" in text or "getenv(" in text) and p != ROOT / "shared" / "runtime.py":
                readers.append(str(p.relative_to(ROOT)))
    assert readers == []
