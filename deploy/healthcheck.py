#!/usr/bin/env python3
"""Container health probe: GET a URL, exit 0 on a 2xx answer, 1 otherwise (one line on stderr).

The images are python:slim (no curl, no wget), so the HEALTHCHECK of the edge and cloud images and
the compose healthchecks run this with the interpreter the service already has. Standard library
only: it must work before, and independently of, anything the project installs.

Usage: prepicm-healthcheck URL [TIMEOUT_S]
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout_s: float = 4.0) -> tuple[bool, str]:
    """(healthy, one-line reason) for a GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300, f"{url}: HTTP {resp.status}"
    except urllib.error.HTTPError as exc:  # 4xx/5xx: the server answered, not healthy
        return False, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {reason}"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: prepicm-healthcheck URL [TIMEOUT_S]", file=sys.stderr)
        return 2
    try:
        timeout_s = float(argv[1]) if len(argv) == 2 else 4.0
    except ValueError:
        print(f"prepicm-healthcheck: TIMEOUT_S must be a number, got {argv[1]!r}", file=sys.stderr)
        return 2
    ok, reason = probe(argv[0], timeout_s)
    if not ok:
        print(f"unhealthy: {reason}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
