#!/usr/bin/env bash
# Create .venv and install everything the project needs (idempotent; skips work already done).
# Usage: bash scripts/setup.sh            PYTHON=python3.11 bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Python >= 3.11 is required (found: $("$PY" --version 2>&1))" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv

stamp=".venv/.install-stamp"
want="$(cat pyproject.toml requirements/*.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

pip() { .venv/bin/python -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip
# torch first, pinned: this exact pair is what the project is tested with.
pip install -q "torch==2.14.1" "torchvision==0.29.1"
pip install -q -e ".[dev]"
# Packages with stale pins (they would replace numpy or torch) go in without their dependencies.
pip install -q --no-deps -r requirements/nodeps.txt
echo "$want" > "$stamp"
echo "setup: .venv ready"
