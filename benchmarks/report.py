"""Where benchmark scripts put their result: a markdown table beside the numbers as JSON."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(out: Path, text: str, summary: dict[str, object]) -> None:
    """Print ``text`` and write it to ``out``.md, and ``summary`` to ``out``.json."""
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
